// Scalar fp32 <-> bf16 oracle for tests (kernels/cpu/convert.h semantics): round to nearest
// even, NaN stays NaN, fp32 denormal inputs flush to signed zero.
#pragma once

#include <cstdint>
#include <cstring>

namespace perceiver::reference {

inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t exp = u & 0x7f800000u, man = u & 0x007fffffu;
  if (exp == 0x7f800000u && man != 0) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // NaN
  if (exp == 0) return static_cast<uint16_t>((u >> 16) & 0x8000u);  // zero or denormal
  // Round half to even on bit 16: add 0x7fff plus the lowest kept bit (overflow gives inf).
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline float bf16_to_f32(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace perceiver::reference
