// Branch-free float exp that GCC vectorises inside `#pragma omp simd` loops (Cephes expf:
// exp(x) = 2^n * exp(r), n = round(x / ln 2), |r| <= ln2/2, degree-5 polynomial, ~1 ulp).
// n is rounded with the 1.5 * 2^23 shifter (no float->int conversion, which blocks
// vectorisation under -ftrapping-math). Returns exactly 0 below -87 (masked scores, -inf).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace perceiver::cpu {

// static: every translation unit keeps its own copy, so the generic and AVX-512 kernel variants
// (compiled with different ISA flags, CMakeLists.txt) never share one out-of-line definition.
static inline float exp_approx(float x) {
  constexpr float kShifter = 12582912.0f;  // 1.5 * 2^23: t + kShifter has round(t) in its low bits
  const float xc = std::min(std::max(x, -87.0f), 88.0f);
  const float shifted = xc * 1.44269504088896341f + kShifter;
  const float n = shifted - kShifter;
  const float r = xc - n * 0.693359375f + n * 2.12194440e-4f;  // ln2 split in two (Cephes C1, C2)
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  bits = (bits - 0x4B400000 + 127) << 23;  // 0x4B400000 = bits of kShifter; 2^n
  float two_n;
  std::memcpy(&two_n, &bits, sizeof two_n);
  return x < -87.0f ? 0.0f : er * two_n;
}

}  // namespace perceiver::cpu
