// dropout (inverted, torch.nn.Dropout in training mode) and drop path (dropout of whole examples):
// validate p, draw one 64-bit seed from the caller's Rng (so the stream advances by exactly two
// draws), call kernels/cpu/dropout.
#include "perceiver/ops/dropout.h"

#include "perceiver/core/profiler.h"
#include "kernels/cpu/dropout.h"
#include "ops/validate.h"

namespace perceiver::ops {
namespace {

uint64_t draw_seed(Rng& rng) {
  const uint64_t hi = rng.next_u32();
  return (hi << 32) | rng.next_u32();
}

}  // namespace

DropoutOut dropout(const Tensor& x, float p, Rng& rng) {
  profiler::Scope prof("dropout");
  detail::expect_f32("dropout", "x", x);
  check(p >= 0.0f && p < 1.0f, "[dropout] p: expected in [0, 1), got ", p);
  if (p == 0.0f) return {x, Tensor()};
  const uint64_t seed = draw_seed(rng);
  DropoutOut out;  // (no throwing calls inside aggregate initialisers: GCC 12)
  out.y = Tensor::empty(x.shape());
  out.mask = Tensor::empty(x.shape());
  cpu::dropout_forward(out.y.f32(), out.mask.f32(), x.f32(), x.numel(), p, seed);
  return out;
}

DropPathOut drop_path(const Tensor& x, float p, Rng& rng) {
  profiler::Scope prof("drop_path");
  detail::expect_f32("drop_path", "x", x);
  detail::expect_min_rank("drop_path", "x", x, 1);
  check(p >= 0.0f && p < 1.0f, "[drop_path] p: expected in [0, 1), got ", p);
  if (p == 0.0f) return {x, Tensor()};
  const uint64_t seed = draw_seed(rng);
  const int64_t rows = x.dim(0), row_len = rows == 0 ? 0 : x.numel() / rows;
  DropPathOut out;
  out.y = Tensor::empty(x.shape());
  out.keep = Tensor::empty({rows});
  cpu::drop_path_forward(out.y.f32(), out.keep.f32(), x.f32(), rows, row_len, p, seed);
  return out;
}

Tensor drop_path_backward(const Tensor& dy, const Tensor& keep) {
  profiler::Scope prof("drop_path_backward");
  detail::expect_f32("drop_path_backward", "dy", dy);
  detail::expect_f32("drop_path_backward", "keep", keep);
  detail::expect_min_rank("drop_path_backward", "dy", dy, 1);
  detail::expect_shape("drop_path_backward", "keep", keep, {dy.dim(0)});
  const int64_t rows = dy.dim(0), row_len = rows == 0 ? 0 : dy.numel() / rows;
  Tensor dx = Tensor::empty(dy.shape());
  cpu::drop_path_backward(dx.f32(), dy.f32(), keep.f32(), rows, row_len);
  return dx;
}

}  // namespace perceiver::ops
