// to_bf16 / to_f32: validate, allocate, convert with kernels/cpu/convert (threads over chunks
// for large tensors: the conversion is memory-bound).
#include "perceiver/ops/convert.h"

#include <algorithm>

#include "kernels/cpu/convert.h"
#include "perceiver/core/parallel.h"

namespace perceiver::ops {
namespace {

template <typename Fn>
void chunked(int64_t n, const Fn& fn) {
  constexpr int64_t kChunk = int64_t(1) << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  if (chunks < 4 || num_threads() < 2 || in_parallel_region()) {
    fn(int64_t(0), n);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(num_threads())
  for (int64_t c = 0; c < chunks; ++c) fn(c * kChunk, std::min(kChunk, n - c * kChunk));
}

}  // namespace

Tensor to_bf16(const Tensor& x) {
  check(x.defined(), "[to_bf16] x is undefined");
  check(x.dtype() == DType::kF32, "[to_bf16] x must be float32, got ", dtype_name(x.dtype()));
  Tensor y = Tensor::empty(x.shape(), DType::kBF16);
  const float* xp = x.f32();
  uint16_t* yp = y.bf16();
  chunked(x.numel(), [&](int64_t i0, int64_t n) { cpu::f32_to_bf16(xp + i0, yp + i0, n); });
  return y;
}

Tensor to_f32(const Tensor& x) {
  check(x.defined(), "[to_f32] x is undefined");
  if (x.dtype() == DType::kF32) return x;
  check(x.dtype() == DType::kBF16, "[to_f32] x must be bfloat16 or float32, got ",
        dtype_name(x.dtype()));
  Tensor y = Tensor::empty(x.shape());
  const uint16_t* xp = x.bf16();
  float* yp = y.f32();
  chunked(x.numel(), [&](int64_t i0, int64_t n) { cpu::bf16_to_f32(xp + i0, yp + i0, n); });
  return y;
}

}  // namespace perceiver::ops
