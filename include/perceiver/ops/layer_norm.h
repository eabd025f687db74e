// Layer normalisation over the last dimension (torch.nn.LayerNorm, biased variance).
#pragma once

#include "perceiver/core/tensor.h"

namespace perceiver::ops {

struct LayerNormOut {
  Tensor y;     // (..., C)  = (x - mean) * rstd * w + b
  Tensor mean;  // (rows)    saved for backward
  Tensor rstd;  // (rows)    1 / sqrt(var + eps)
};
// x (..., C), w (C), b (C)
LayerNormOut layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps);

struct LayerNormGrads {
  Tensor dx, dw, db;
};
LayerNormGrads layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                                   const Tensor& mean, const Tensor& rstd);

}  // namespace perceiver::ops
