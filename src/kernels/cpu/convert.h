// fp32 <-> bfloat16 conversion. bf16 is stored as uint16_t: the top 16 bits of an IEEE-754
// float (1 sign, 8 exponent, 7 mantissa bits). Raw pointers, never throw.
#pragma once

#include <cstdint>

namespace perceiver::cpu {

// y = bf16(x): round to nearest, ties to even; NaN stays a (quiet) NaN, +-inf stay inf; fp32
// denormal inputs become signed zero (as AVX512-BF16 vcvtneps2bf16 does), so every code path
// gives identical bits. Uses vcvtneps2bf16 when compiled for AVX512-BF16.
void f32_to_bf16(const float* x, uint16_t* y, int64_t n);

// y = float(x): exact (bf16 is a truncated fp32).
void bf16_to_f32(const uint16_t* x, float* y, int64_t n);

}  // namespace perceiver::cpu
