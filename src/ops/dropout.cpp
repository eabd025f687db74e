// dropout (inverted, torch.nn.Dropout in training mode): validate p, draw one 64-bit seed from
// the caller's Rng (so the stream advances by exactly two draws), call kernels/cpu/dropout.
#include "perceiver/ops/dropout.h"

#include "perceiver/core/profiler.h"
#include "kernels/cpu/dropout.h"
#include "ops/validate.h"

namespace perceiver::ops {

DropoutOut dropout(const Tensor& x, float p, Rng& rng) {
  profiler::Scope prof("dropout");
  detail::expect_f32("dropout", "x", x);
  check(p >= 0.0f && p < 1.0f, "[dropout] p: expected in [0, 1), got ", p);
  if (p == 0.0f) return {x, Tensor()};
  const uint64_t hi = rng.next_u32();
  const uint64_t seed = (hi << 32) | rng.next_u32();
  DropoutOut out{Tensor::empty(x.shape()), Tensor::empty(x.shape())};
  cpu::dropout_forward(out.y.f32(), out.mask.f32(), x.f32(), x.numel(), p, seed);
  return out;
}

}  // namespace perceiver::ops
