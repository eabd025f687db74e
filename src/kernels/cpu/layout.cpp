// Batched transposes in square tiles (both sides stay in L1 while a tile is copied); tiles of
// all batches are split across threads. Patch gathers: one image row per work unit, the
// backward as a gather too (each input pixel sums the copies of itself), so threads never share
// an output element.
#include "kernels/cpu/layout.h"

#include <algorithm>

#include "perceiver/core/parallel.h"

namespace perceiver::cpu {
namespace {

constexpr int64_t kTile = 32;
constexpr int64_t kGrainElems = 1 << 15;  // elements per thread before splitting pays off

// dst[b, j, i] = src[b, i, j] for src (batch, rows, cols).
void transpose_batched(float* dst, const float* src, int64_t batch, int64_t rows, int64_t cols) {
  const int64_t row_tiles = (rows + kTile - 1) / kTile;
  const int64_t units = batch * row_tiles;  // one unit = a band of kTile rows of one matrix
  const int64_t grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(kTile * cols, 1));
  parallel_for(units, grain, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t b = u / row_tiles, i0 = (u % row_tiles) * kTile;
      const int64_t i1 = std::min(i0 + kTile, rows);
      const float* s = src + b * rows * cols;
      float* d = dst + b * rows * cols;
      for (int64_t j0 = 0; j0 < cols; j0 += kTile) {
        const int64_t j1 = std::min(j0 + kTile, cols);
        for (int64_t j = j0; j < j1; ++j)
          for (int64_t i = i0; i < i1; ++i) d[j * rows + i] = s[i * cols + j];
      }
    }
  });
}

}  // namespace

void channels_last_tokens(float* y, const float* x, int64_t B, int64_t C, int64_t S) {
  transpose_batched(y, x, B, C, S);
}

void channels_last_tokens_backward(float* dx, const float* dy, int64_t B, int64_t C, int64_t S) {
  transpose_batched(dx, dy, B, S, C);
}

void image_patches(float* y, const float* x, int64_t B, int64_t H, int64_t W, int64_t C, int64_t k) {
  const int64_t r = k / 2, F = k * k * C;
  const int64_t grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(W * F, 1));
  parallel_for(B * H, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t b = row / H, i = row % H;
      float* yrow = y + row * W * F;
      for (int64_t j = 0; j < W; ++j) {
        // offsets v in [v0, v1) fall inside the image; they are one contiguous run of k' C floats
        // in both the source row and the patch (one copy per patch row, not per pixel)
        const int64_t v0 = std::max<int64_t>(0, r - j), v1 = std::min<int64_t>(k, W - j + r);
        float* yp = yrow + j * F;
        for (int64_t u = 0; u < k; ++u) {
          const int64_t si = i + u - r;
          float* dst = yp + u * k * C;
          if (si < 0 || si >= H) {
            std::fill_n(dst, k * C, 0.0f);
            continue;
          }
          const float* src = x + ((b * H + si) * W + (j + v0 - r)) * C;
          std::fill_n(dst, v0 * C, 0.0f);
          std::copy_n(src, (v1 - v0) * C, dst + v0 * C);
          std::fill_n(dst + v1 * C, (k - v1) * C, 0.0f);
        }
      }
    }
  });
}

void image_patches_backward(float* dx, const float* dy, int64_t B, int64_t H, int64_t W, int64_t C, int64_t k) {
  const int64_t r = k / 2, F = k * k * C;
  const int64_t grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(W * F, 1));
  parallel_for(B * H, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t b = row / H, si = row % H;
      for (int64_t sj = 0; sj < W; ++sj) {
        float* d = dx + row * W * C + sj * C;
        std::fill_n(d, C, 0.0f);
        // the pixel (si, sj) sits at offset (u, v) of the output pixel (si - u + r, sj - v + r)
        for (int64_t u = 0; u < k; ++u) {
          const int64_t i = si - u + r;
          if (i < 0 || i >= H) continue;
          for (int64_t v = 0; v < k; ++v) {
            const int64_t j = sj - v + r;
            if (j < 0 || j >= W) continue;
            const float* g = dy + ((b * H + i) * W + j) * F + (u * k + v) * C;
            for (int64_t c = 0; c < C; ++c) d[c] += g[c];
          }
        }
      }
    }
  });
}

}  // namespace perceiver::cpu
