// Keys and values of a cross-attention whose inputs are [x, s]: each example's own channels x
// followed by channels s shared by every example (position features), through the input
// LayerNorm and the key and value projections, without forming [x, s] or LN([x, s]):
//   K = LN([x, s]) Wk^T + bk,  V = LN([x, s]) Wv^T + bv   (kernels/cpu/kv_projection.h)
#pragma once

#include "perceiver/core/tensor.h"

namespace perceiver::ops {

struct KvProjectionOut {
  Tensor k, v;        // (B, M, Dk), (B, M, Dv)
  Tensor mean, rstd;  // (B, M) the LayerNorm's statistics, saved for backward
};
// x (B, M, Cx), s (M, Cs), ln_w, ln_b (Cx + Cs), wk (Dk, Cx + Cs), bk (Dk), wv (Dv, Cx + Cs), bv (Dv);
// all float32.
KvProjectionOut kv_projection(const Tensor& x, const Tensor& s, const Tensor& ln_w, const Tensor& ln_b, float eps,
                              const Tensor& wk, const Tensor& bk, const Tensor& wv, const Tensor& bv);

struct KvProjectionGrads {
  Tensor dx, dln_w, dln_b, dwk, dbk, dwv, dbv;  // dx only when asked for
};
// dk, dv: the gradients of K and V (either undefined: zero).
KvProjectionGrads kv_projection_backward(const Tensor& dk, const Tensor& dv, const Tensor& x, const Tensor& s,
                                         const Tensor& ln_w, const Tensor& ln_b, const Tensor& wk, const Tensor& wv,
                                         const Tensor& mean, const Tensor& rstd, bool need_dx);

}  // namespace perceiver::ops
