// PCG32 (O'Neill 2014, pcg32_random_r) with Box-Muller normals.
#include "perceiver/core/random.h"

#include <cmath>

namespace perceiver {

Rng::Rng(uint64_t seed, uint64_t stream) {
  state_ = 0;
  inc_ = (stream << 1u) | 1u;
  next_u32();
  state_ += seed;
  next_u32();
}

uint32_t Rng::next_u32() {
  const uint64_t old = state_;
  state_ = old * 6364136223846793005ULL + inc_;
  const uint32_t xorshifted = static_cast<uint32_t>(((old >> 18u) ^ old) >> 27u);
  const uint32_t rot = static_cast<uint32_t>(old >> 59u);
  return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

float Rng::uniform() { return (next_u32() >> 8) * (1.0f / 16777216.0f); }

float Rng::normal() {
  // Box-Muller on (0, 1] x [0, 1): no cached second value, so state is just (state_, inc_).
  const double u1 = ((next_u32() >> 8) + 1.0) / 16777216.0;
  const double u2 = (next_u32() >> 8) / 16777216.0;
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

uint32_t Rng::below(uint32_t n) {
  if (n <= 1) return 0;
  const uint32_t threshold = (-n) % n;  // Lemire-free classic rejection
  for (;;) {
    const uint32_t r = next_u32();
    if (r >= threshold) return r % n;
  }
}

}  // namespace perceiver
