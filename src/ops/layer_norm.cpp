// layer_norm and layer_norm_backward: validate, allocate, call kernels/cpu/layer_norm.
// torch.nn.LayerNorm over the last dimension with biased variance.
#include "perceiver/ops/layer_norm.h"

#include "perceiver/core/profiler.h"
#include "kernels/cpu/layer_norm.h"
#include "ops/validate.h"

namespace perceiver::ops {

using detail::expect_f32;
using detail::expect_min_rank;
using detail::expect_shape;

LayerNormOut layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps) {
  profiler::Scope prof("layer_norm");
  constexpr const char* op = "layer_norm";
  expect_f32(op, "x", x);
  expect_f32(op, "w", w);
  expect_f32(op, "b", b);
  expect_min_rank(op, "x", x, 1);
  const int64_t C = x.dim(-1);
  check(C > 0, "[layer_norm] x: expected a non-empty last dimension, got shape ", shape_str(x.shape()));
  expect_shape(op, "w", w, {C});
  expect_shape(op, "b", b, {C});
  check(eps >= 0.0f, "[layer_norm] eps: expected >= 0, got ", eps);
  const int64_t rows = x.numel() / C;
  LayerNormOut out{Tensor::empty(x.shape()), Tensor::empty({rows}), Tensor::empty({rows})};
  cpu::layer_norm_forward(out.y.f32(), out.mean.f32(), out.rstd.f32(), x.f32(), w.f32(), b.f32(),
                          rows, C, eps);
  return out;
}

LayerNormGrads layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                                   const Tensor& mean, const Tensor& rstd) {
  profiler::Scope prof("layer_norm_backward");
  constexpr const char* op = "layer_norm_backward";
  expect_f32(op, "dy", dy);
  expect_f32(op, "x", x);
  expect_f32(op, "w", w);
  expect_f32(op, "mean", mean);
  expect_f32(op, "rstd", rstd);
  expect_min_rank(op, "x", x, 1);
  const int64_t C = x.dim(-1);
  check(C > 0, "[layer_norm_backward] x: expected a non-empty last dimension, got shape ",
        shape_str(x.shape()));
  const int64_t rows = x.numel() / C;
  expect_shape(op, "dy", dy, x.shape());
  expect_shape(op, "w", w, {C});
  expect_shape(op, "mean", mean, {rows});
  expect_shape(op, "rstd", rstd, {rows});
  LayerNormGrads g{Tensor::empty(x.shape()), Tensor::empty({C}), Tensor::empty({C})};
  cpu::layer_norm_backward(g.dx.f32(), g.dw.f32(), g.db.f32(), dy.f32(), x.f32(), w.f32(),
                           mean.f32(), rstd.f32(), rows, C);
  return g;
}

}  // namespace perceiver::ops
