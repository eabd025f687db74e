// to_bf16 / to_f32: validate, allocate, convert with kernels/cpu/convert (split over threads
// with parallel_for for large tensors).
#include "perceiver/ops/convert.h"

#include "perceiver/core/profiler.h"
#include "kernels/cpu/convert.h"
#include "ops/validate.h"
#include "perceiver/core/parallel.h"

namespace perceiver::ops {
namespace {

// Elements per thread before splitting pays off (the conversion streams memory).
constexpr int64_t kGrain = int64_t(1) << 16;

}  // namespace

Tensor to_bf16(const Tensor& x) {
  profiler::Scope prof("to_bf16");
  detail::expect_f32("to_bf16", "x", x);
  Tensor y = Tensor::empty(x.shape(), DType::kBF16);
  const float* xp = x.f32();
  uint16_t* yp = y.bf16();
  parallel_for(x.numel(), kGrain, [&](int64_t i0, int64_t i1) { cpu::f32_to_bf16(xp + i0, yp + i0, i1 - i0); });
  return y;
}

Tensor bf16_copy_of(const Tensor& w) {
  detail::expect_f32("bf16_copy_of", "w", w);
  Tensor c = w.remembered_copy(DType::kBF16);
  if (c.defined()) return c;
  const uint64_t version = w.write_version();  // before reading: a write meanwhile makes the copy stale
  c = to_bf16(w);
  w.remember_copy(c, version);
  return c;
}

Tensor to_f32(const Tensor& x) {
  profiler::Scope prof("to_f32");
  check(x.defined(), "[to_f32] x is undefined");
  if (x.dtype() == DType::kF32) return x;
  check(x.dtype() == DType::kBF16, "[to_f32] x must be bfloat16 or float32, got ",
        dtype_name(x.dtype()));
  Tensor y = Tensor::empty(x.shape());
  const uint16_t* xp = x.bf16();
  float* yp = y.f32();
  parallel_for(x.numel(), kGrain, [&](int64_t i0, int64_t i1) { cpu::bf16_to_f32(xp + i0, yp + i0, i1 - i0); });
  return y;
}

}  // namespace perceiver::ops
