// Batched transposes in square tiles (both sides stay in L1 while a tile is copied); tiles of
// all batches are split across threads.
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

}  // namespace perceiver::cpu
