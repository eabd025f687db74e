// Dropout kernels: SplitMix64 finaliser (Steele et al. 2014) of seed + i as the per-element
// random stream; a branch-free loop the compiler vectorises.
#include "kernels/cpu/dropout.h"

#include <algorithm>

#include "perceiver/core/parallel.h"

namespace perceiver::cpu {
namespace {

constexpr int64_t kGrainElems = 1 << 15;

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// keep iff (24-bit uniform integer of (seed, i)) >= p * 2^24, i.e. u >= p with u = k / 2^24
inline float keep_value(uint64_t seed, int64_t i, uint32_t threshold, float keep_scale) {
  const uint32_t u = static_cast<uint32_t>(mix64(seed + 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(i)) >> 40);
  return u >= threshold ? keep_scale : 0.0f;
}

uint32_t drop_threshold(float p) { return static_cast<uint32_t>(static_cast<double>(p) * 16777216.0); }

}  // namespace

void dropout_forward(float* y, float* mask, const float* x, int64_t n, float p, uint64_t seed) {
  const uint32_t threshold = drop_threshold(p);
  const float keep_scale = 1.0f / (1.0f - p);
  parallel_for(n, kGrainElems, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float m = keep_value(seed, i, threshold, keep_scale);
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

void drop_path_forward(float* y, float* keep, const float* x, int64_t rows, int64_t row_len, float p, uint64_t seed) {
  const uint32_t threshold = drop_threshold(p);
  const float keep_scale = 1.0f / (1.0f - p);
  for (int64_t r = 0; r < rows; ++r) keep[r] = keep_value(seed, r, threshold, keep_scale);
  drop_path_backward(y, x, keep, rows, row_len);  // y = x * keep_r: the same row scaling
}

void drop_path_backward(float* dx, const float* dy, const float* keep, int64_t rows, int64_t row_len) {
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(row_len, 1));
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float k = keep[r];
      const float* src = dy + r * row_len;
      float* dst = dx + r * row_len;
      for (int64_t j = 0; j < row_len; ++j) dst[j] = src[j] * k;
    }
  });
}

}  // namespace perceiver::cpu
