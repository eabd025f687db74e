// Embedding kernels: row copies for the lookup; the backward splits the D columns across
// threads so every thread scatters whole rows race-free and in a fixed order.
#include "kernels/cpu/embedding.h"

#include <algorithm>
#include <cstring>

#include "perceiver/core/parallel.h"

namespace perceiver::cpu {
namespace {
constexpr int64_t kGrainElems = 1 << 16;
}  // namespace

void embedding_forward(float* y, const int32_t* idx, const float* table, int64_t rows, int64_t dim) {
  if (dim == 0) return;
  parallel_for(rows, std::max<int64_t>(1, kGrainElems / dim), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      std::memcpy(y + r * dim, table + static_cast<int64_t>(idx[r]) * dim,
                  static_cast<size_t>(dim) * sizeof(float));
  });
}

void embedding_backward(float* dtable, const float* dy, const int32_t* idx, int64_t rows,
                        int64_t num_embeddings, int64_t dim) {
  std::fill(dtable, dtable + num_embeddings * dim, 0.0f);
  if (dim == 0) return;
  // Column blocks of at least 16 floats; each block walks all rows in order.
  parallel_for(dim, std::max<int64_t>(16, kGrainElems / std::max<int64_t>(rows, 1)),
               [&](int64_t j0, int64_t j1) {
                 for (int64_t r = 0; r < rows; ++r) {
                   float* __restrict d = dtable + static_cast<int64_t>(idx[r]) * dim;
                   const float* __restrict g = dy + r * dim;
                   for (int64_t j = j0; j < j1; ++j) d[j] += g[j];
                 }
               });
}

}  // namespace perceiver::cpu
