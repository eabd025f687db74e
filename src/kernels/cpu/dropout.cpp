// Dropout kernels: SplitMix64 finaliser (Steele et al. 2014) of seed + i as the per-element
// random stream; a branch-free loop the compiler vectorises.
#include "kernels/cpu/dropout.h"

#include "perceiver/core/parallel.h"

namespace perceiver::cpu {
namespace {

constexpr int64_t kGrainElems = 1 << 15;

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

void dropout_forward(float* y, float* mask, const float* x, int64_t n, float p, uint64_t seed) {
  // keep iff (24-bit uniform integer) >= p * 2^24, i.e. u >= p with u = k / 2^24.
  const uint32_t threshold = static_cast<uint32_t>(static_cast<double>(p) * 16777216.0);
  const float keep_scale = 1.0f / (1.0f - p);
  parallel_for(n, kGrainElems, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const uint32_t u = static_cast<uint32_t>(mix64(seed + 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(i)) >> 40);
      const float m = u >= threshold ? keep_scale : 0.0f;
      mask[i] = m;
      y[i] = x[i] * m;
    }
  });
}

void dropout_backward(float* dx, const float* dy, const float* mask, int64_t n) {
  parallel_for(n, 1 << 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) dx[i] = dy[i] * mask[i];
  });
}

}  // namespace perceiver::cpu
