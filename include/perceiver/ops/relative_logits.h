// 2-D relative position logits of BoTNet's self-attention (Srinivas et al. 2021, arXiv
// 2101.11605; timm BottleneckAttn / PosEmbedRel), from the per-offset logits:
//   y[n, i, j] = rw[n, i, jw - iw + W - 1] + rh[n, i, jh - ih + H - 1]
// for query i = (ih, iw) and key j = (jh, jw) of an H x W map (i = ih W + iw), where
// rw = q width_rel^T (n, HW, 2W - 1) and rh = q height_rel^T (n, HW, 2H - 1) are products the
// caller forms (ag::matmul), so the gradients of q and the tables follow from those products.
#pragma once

#include "perceiver/core/tensor.h"

namespace perceiver::ops {

Tensor relative_logits(const Tensor& rw, const Tensor& rh, int64_t height, int64_t width);  // (n, HW, HW)

struct RelativeLogitsGrads {
  Tensor drw;  // (n, HW, 2W - 1): sum of dy over the keys each offset feeds
  Tensor drh;  // (n, HW, 2H - 1)
};
RelativeLogitsGrads relative_logits_backward(const Tensor& dy, int64_t height, int64_t width);

}  // namespace perceiver::ops
