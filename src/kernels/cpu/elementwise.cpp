// Elementwise kernels: plain loops the compiler vectorises (-O3 -march=native), split across
// threads only when there is enough memory traffic to amortise a parallel region.
#include "kernels/cpu/elementwise.h"

#include <cmath>

#include <algorithm>
#include <cstring>
#include <vector>

#include "perceiver/core/parallel.h"

namespace perceiver::cpu {
namespace {

constexpr int64_t kGrainElems = 1 << 16;  // memory-bound: larger grain than compute kernels

int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, kGrainElems / std::max<int64_t>(cols, 1)); }

// memcpy of n floats; n == 0 may come with null pointers from empty tensors.
inline void copy_floats(float* dst, const float* src, int64_t n) {
  if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

}  // namespace

void add_forward(float* out, const float* a, const float* b, int64_t rows, int64_t cols) {
  parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* __restrict o = out + r * cols;
      const float* __restrict ar = a + r * cols;
      const float* __restrict bb = b;
      for (int64_t j = 0; j < cols; ++j) o[j] = ar[j] + bb[j];
    }
  });
}

void sub_forward(float* out, const float* a, const float* b, int64_t n) {
  parallel_for(n, kGrainElems, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = a[i] - b[i];
  });
}

void mul_forward(float* out, const float* a, const float* b, int64_t n) {
  parallel_for(n, kGrainElems, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = a[i] * b[i];
  });
}

void scale_forward(float* out, const float* x, float s, int64_t n) {
  parallel_for(n, kGrainElems, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = s * x[i];
  });
}

void log_forward(float* out, const float* x, float eps, int64_t n) {
  parallel_for(n, kGrainElems, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = std::log(x[i] + eps);
  });
}

void log_backward(float* dx, const float* dy, const float* x, float eps, int64_t n) {
  parallel_for(n, kGrainElems, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) dx[i] = dy[i] / (x[i] + eps);
  });
}

void axpy_inplace(float* dst, float alpha, const float* src, int64_t n) {
  parallel_for(n, kGrainElems, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) dst[i] += alpha * src[i];
  });
}

void sum_to_forward(float* out, const float* x, int64_t rows, int64_t cols) {
  if (rows == 0) {
    std::fill(out, out + cols, 0.0f);
    return;
  }
  // Chunk c sums rows [rows*c/k, rows*(c+1)/k) into its own partial (chunk 0 writes out).
  const int64_t k = std::max<int64_t>(1, std::min<int64_t>(num_threads(), rows / row_grain(cols)));
  std::vector<float> partial(static_cast<size_t>((k - 1) * cols));
  parallel_for(k, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      float* __restrict acc = c == 0 ? out : partial.data() + (c - 1) * cols;
      const int64_t r0 = rows * c / k, r1 = rows * (c + 1) / k;
      copy_floats(acc, x + r0 * cols, cols);
      for (int64_t r = r0 + 1; r < r1; ++r) {
        const float* __restrict xr = x + r * cols;
        for (int64_t j = 0; j < cols; ++j) acc[j] += xr[j];
      }
    }
  });
  for (int64_t c = 1; c < k; ++c) {
    const float* p = partial.data() + (c - 1) * cols;
    for (int64_t j = 0; j < cols; ++j) out[j] += p[j];
  }
}

void sum_rows_f64(float* out, const float* x, int64_t rows, int64_t cols) {
  // threads take blocks of columns, so each column is still summed over the rows in order
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (cols + kBlock - 1) / kBlock;
  const int64_t grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(rows * kBlock, 1));
  parallel_for(blocks, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t j0 = blk * kBlock, n = std::min(kBlock, cols - j0);
      double acc[kBlock] = {};
      for (int64_t r = 0; r < rows; ++r) {
        const float* __restrict xr = x + r * cols + j0;
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) acc[j] += static_cast<double>(xr[j]);
      }
      for (int64_t j = 0; j < n; ++j) out[j0 + j] = static_cast<float>(acc[j]);
    }
  });
}

void add_row_inplace(float* y, const float* b, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  // Rows narrower than a few vectors (a 35-wide projection) would spend their time in loop tails:
  // add a pattern of whole rows whose length is a multiple of 16 floats to y taken flat.
  int64_t g = 16;  // gcd(cols, 16)
  while (cols % g != 0) g /= 2;
  const int64_t period_rows = 16 / g, period = period_rows * cols;  // lcm(cols, 16) floats
  const bool flat = cols % 16 != 0 && period <= 2048 && rows >= 2 * period_rows;
  parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
    int64_t r = r0;
    if (flat) {
      alignas(64) float pattern[2048];
      for (int64_t i = 0; i < period; ++i) pattern[i] = b[i % cols];
      for (; r + period_rows <= r1; r += period_rows) {
        float* __restrict yr = y + r * cols;
#pragma omp simd
        for (int64_t i = 0; i < period; ++i) yr[i] += pattern[i];
      }
    }
    for (; r < r1; ++r) {
      float* __restrict yr = y + r * cols;
      const float* __restrict bb = b;
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) yr[j] += bb[j];
    }
  });
}

void expand_leading_forward(float* out, const float* x, int64_t n, int64_t numel) {
  parallel_for(n, row_grain(numel), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      copy_floats(out + r * numel, x, numel);
  });
}

void concat_last_forward(float* out, const float* a, const float* b, int64_t rows, int64_t c1,
                         int64_t c2) {
  const int64_t c = c1 + c2;
  parallel_for(rows, row_grain(c), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      copy_floats(out + r * c, a + r * c1, c1);
      copy_floats(out + r * c + c1, b + r * c2, c2);
    }
  });
}

void split_last_forward(float* a, float* b, const float* x, int64_t rows, int64_t c1, int64_t c2) {
  const int64_t c = c1 + c2;
  parallel_for(rows, row_grain(c), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      copy_floats(a + r * c1, x + r * c, c1);
      copy_floats(b + r * c2, x + r * c + c1, c2);
    }
  });
}

}  // namespace perceiver::cpu
