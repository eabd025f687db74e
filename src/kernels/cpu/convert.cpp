// fp32 <-> bf16 conversion: vcvtneps2bf16 (AVX512-BF16) 16 lanes at a time when compiled for
// it, else the same rounding in integer arithmetic (which the compiler vectorises). Both paths
// flush denormal inputs to signed zero, matching the instruction.
#include "kernels/cpu/convert.h"

#include <cstring>

#include "kernels/reference/convert.h"

#if defined(__AVX512BF16__) && defined(__AVX512BW__)
#include "kernels/cpu/simd_avx512.h"
#endif

// Compiled once per ISA variant (CMakeLists.txt, kernels/cpu/isa_dispatch.cpp).
namespace perceiver::cpu::PERCEIVER_ISA {

void f32_to_bf16(const float* x, uint16_t* y, int64_t n) {
#if defined(__AVX512BF16__) && defined(__AVX512BW__)
  simd::loop(n, [&](int64_t i, __mmask16 m) {
    const __m256bh h = _mm512_cvtneps_pbh(simd::load(x + i, m));
    __m256i bits;
    std::memcpy(&bits, &h, sizeof bits);
    _mm256_mask_storeu_epi16(y + i, m, bits);
  });
#else
  for (int64_t i = 0; i < n; ++i) y[i] = reference::f32_to_bf16(x[i]);
#endif
}

void bf16_to_f32(const uint16_t* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t u = static_cast<uint32_t>(x[i]) << 16;
    std::memcpy(y + i, &u, 4);
  }
}

// Whether this variant was compiled with AVX512-BF16 instructions (then the CPU must have them).
bool variant_uses_avx512_bf16() {
#if defined(__AVX512BF16__) && defined(__AVX512BW__)
  return true;
#else
  return false;
#endif
}

}  // namespace perceiver::cpu::PERCEIVER_ISA
