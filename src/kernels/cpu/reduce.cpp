// Reduction kernels: contiguous-row sums when the reduced axis is last, otherwise row-of-inner
// accumulation vectorised over the inner dimension; work split across (outer, inner block) tiles.
#include "kernels/cpu/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "perceiver/core/parallel.h"

namespace perceiver::cpu {
namespace {

constexpr int64_t kGrainElems = 1 << 16;
constexpr int64_t kInnerBlock = 1024;  // floats of the inner dim one tile covers (4 KiB)
constexpr int64_t kSumBlock = 1 << 14;  // fixed block of the deterministic full sum

int64_t grain_for(int64_t work_per_item) {
  return std::max<int64_t>(1, kGrainElems / std::max<int64_t>(work_per_item, 1));
}

}  // namespace

void mean_forward(float* y, const float* x, int64_t outer, int64_t len, int64_t inner) {
  const float inv = 1.0f / static_cast<float>(len);
  if (inner == 1) {  // reduce contiguous rows
    parallel_for(outer, grain_for(len), [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        const float* xr = x + o * len;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t l = 0; l < len; ++l) s += xr[l];
        y[o] = s * inv;
      }
    });
    return;
  }
  const int64_t blocks = (inner + kInnerBlock - 1) / kInnerBlock;
  parallel_for(outer * blocks, grain_for(len * std::min(inner, kInnerBlock)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o = t / blocks, i0 = (t % blocks) * kInnerBlock;
      const int64_t w = std::min(kInnerBlock, inner - i0);
      float* __restrict yo = y + o * inner + i0;
      std::fill(yo, yo + w, 0.0f);
      for (int64_t l = 0; l < len; ++l) {
        const float* __restrict xr = x + (o * len + l) * inner + i0;
        for (int64_t i = 0; i < w; ++i) yo[i] += xr[i];
      }
      for (int64_t i = 0; i < w; ++i) yo[i] *= inv;
    }
  });
}

void mean_backward(float* dx, const float* dy, int64_t outer, int64_t len, int64_t inner) {
  const float inv = 1.0f / static_cast<float>(len);
  parallel_for(outer * len, grain_for(inner), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* __restrict g = dy + (r / len) * inner;
      float* __restrict d = dx + r * inner;
      for (int64_t i = 0; i < inner; ++i) d[i] = g[i] * inv;
    }
  });
}

void center(float* y, const float* x, int64_t outer, int64_t len, int64_t inner) {
  const float inv = 1.0f / static_cast<float>(len);
  const int64_t blocks = (inner + kInnerBlock - 1) / kInnerBlock;
  parallel_for(outer * blocks, grain_for(2 * len * std::min(inner, kInnerBlock)), [&](int64_t t0, int64_t t1) {
    float mean[kInnerBlock];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o = t / blocks, i0 = (t % blocks) * kInnerBlock;
      const int64_t w = std::min(kInnerBlock, inner - i0);
      std::fill(mean, mean + w, 0.0f);
      for (int64_t l = 0; l < len; ++l) {
        const float* __restrict xr = x + (o * len + l) * inner + i0;
        for (int64_t i = 0; i < w; ++i) mean[i] += xr[i];
      }
      for (int64_t i = 0; i < w; ++i) mean[i] *= inv;
      for (int64_t l = 0; l < len; ++l) {
        const float* xr = x + (o * len + l) * inner + i0;  // may alias yr
        float* yr = y + (o * len + l) * inner + i0;
        for (int64_t i = 0; i < w; ++i) yr[i] = xr[i] - mean[i];
      }
    }
  });
}

void standardize(float* y, float* rstd, const float* x, int64_t outer, int64_t len, int64_t inner, float eps) {
  const float inv = 1.0f / static_cast<float>(len);
  const int64_t blocks = (inner + kInnerBlock - 1) / kInnerBlock;
  parallel_for(outer * blocks, grain_for(3 * len * std::min(inner, kInnerBlock)), [&](int64_t t0, int64_t t1) {
    float mean[kInnerBlock], var[kInnerBlock];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o = t / blocks, i0 = (t % blocks) * kInnerBlock;
      const int64_t w = std::min(kInnerBlock, inner - i0);
      std::fill(mean, mean + w, 0.0f);
      std::fill(var, var + w, 0.0f);
      for (int64_t l = 0; l < len; ++l) {
        const float* __restrict xr = x + (o * len + l) * inner + i0;
        for (int64_t i = 0; i < w; ++i) mean[i] += xr[i];
      }
      for (int64_t i = 0; i < w; ++i) mean[i] *= inv;
      for (int64_t l = 0; l < len; ++l) {  // two passes: the variance of centred values
        const float* __restrict xr = x + (o * len + l) * inner + i0;
        for (int64_t i = 0; i < w; ++i) var[i] += (xr[i] - mean[i]) * (xr[i] - mean[i]);
      }
      float* __restrict r = rstd + o * inner + i0;
      for (int64_t i = 0; i < w; ++i) r[i] = 1.0f / std::sqrt(var[i] * inv + eps);
      for (int64_t l = 0; l < len; ++l) {
        const float* xr = x + (o * len + l) * inner + i0;  // may alias yr
        float* yr = y + (o * len + l) * inner + i0;
        for (int64_t i = 0; i < w; ++i) yr[i] = (xr[i] - mean[i]) * r[i];
      }
    }
  });
}

void standardize_backward(float* dx, const float* dy, const float* y, const float* rstd, int64_t outer, int64_t len,
                          int64_t inner) {
  const float inv = 1.0f / static_cast<float>(len);
  const int64_t blocks = (inner + kInnerBlock - 1) / kInnerBlock;
  parallel_for(outer * blocks, grain_for(3 * len * std::min(inner, kInnerBlock)), [&](int64_t t0, int64_t t1) {
    float mg[kInnerBlock], mgy[kInnerBlock];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o = t / blocks, i0 = (t % blocks) * kInnerBlock;
      const int64_t w = std::min(kInnerBlock, inner - i0);
      std::fill(mg, mg + w, 0.0f);
      std::fill(mgy, mgy + w, 0.0f);
      for (int64_t l = 0; l < len; ++l) {
        const float* __restrict g = dy + (o * len + l) * inner + i0;
        const float* __restrict yr = y + (o * len + l) * inner + i0;
        for (int64_t i = 0; i < w; ++i) {
          mg[i] += g[i];
          mgy[i] += g[i] * yr[i];
        }
      }
      for (int64_t i = 0; i < w; ++i) {
        mg[i] *= inv;
        mgy[i] *= inv;
      }
      const float* __restrict r = rstd + o * inner + i0;
      for (int64_t l = 0; l < len; ++l) {
        const float* g = dy + (o * len + l) * inner + i0;  // may alias d
        const float* yr = y + (o * len + l) * inner + i0;
        float* d = dx + (o * len + l) * inner + i0;
        for (int64_t i = 0; i < w; ++i) d[i] = r[i] * (g[i] - mg[i] - yr[i] * mgy[i]);
      }
    }
  });
}

double blocked_sum(int64_t n, const std::function<double(int64_t, int64_t)>& block_sum) {
  const int64_t blocks = (n + kSumBlock - 1) / kSumBlock;
  if (blocks <= 1) return n > 0 ? block_sum(0, n) : 0.0;
  std::vector<double> part(static_cast<size_t>(blocks));
  parallel_for(blocks, std::max<int64_t>(1, kGrainElems / kSumBlock), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) part[b] = block_sum(b * kSumBlock, std::min(n, (b + 1) * kSumBlock));
  });
  double s = 0;
  for (double p : part) s += p;
  return s;
}

void sum_all_forward(float* out, const float* x, int64_t n) {
  const double s = blocked_sum(n, [x](int64_t i0, int64_t i1) {
    double acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = i0; i < i1; ++i) acc += x[i];
    return acc;
  });
  *out = static_cast<float>(s);
}

namespace {

// Counts values whose exponent bits (mask) are all ones: NaN and Inf of float32 (0x7F800000 on
// the 32-bit pattern) or bf16 (0x7F80). Integer compares vectorise; blocks run in parallel.
template <typename Bits>
int64_t count_all_ones_exponent(const Bits* x, int64_t n, Bits mask, int64_t* first) {
  const double total = blocked_sum(n, [x, mask](int64_t i0, int64_t i1) {
    const Bits* __restrict p = x + i0;  // locals, so the loop streams instead of gathering
    const Bits m = mask;
    const int32_t len = static_cast<int32_t>(i1 - i0);  // a block is at most kSumBlock long
    int32_t c = 0;
#pragma omp simd reduction(+ : c)
    for (int32_t i = 0; i < len; ++i) c += (p[i] & m) == m ? 1 : 0;
    return static_cast<double>(c);
  });
  *first = -1;
  if (total > 0)
    for (int64_t i = 0; i < n; ++i)
      if ((x[i] & mask) == mask) {
        *first = i;
        break;
      }
  return static_cast<int64_t>(total);
}

}  // namespace

int64_t count_nonfinite(const float* x, int64_t n, int64_t* first) {
  static_assert(sizeof(float) == sizeof(uint32_t));
  // float32 storage read as its bit patterns (tensor storage is malloc'ed, so this aliasing is
  // the same one memcpy would make)
  return count_all_ones_exponent(reinterpret_cast<const uint32_t*>(x), n, uint32_t{0x7F800000u}, first);
}

int64_t count_nonfinite_bf16(const uint16_t* x, int64_t n, int64_t* first) {
  return count_all_ones_exponent(x, n, uint16_t{0x7F80u}, first);
}

}  // namespace perceiver::cpu
