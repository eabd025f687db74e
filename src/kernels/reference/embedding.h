// Reference embedding lookup and scatter-add backward (torch.nn.Embedding): plain scalar
// templates, run in double by the tests as the oracle for kernels/cpu/embedding.
#pragma once

#include <cstdint>

namespace perceiver::ref {

// y (rows, D) = table (V, D)[idx (rows)]
template <typename T>
void embedding_forward(T* y, const int32_t* idx, const T* table, int64_t rows, int64_t dim) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < dim; ++j) y[r * dim + j] = table[static_cast<int64_t>(idx[r]) * dim + j];
}

// dtable (V, D) = 0, then dtable[idx[r]] += dy[r]
template <typename T>
void embedding_backward(T* dtable, const T* dy, const int32_t* idx, int64_t rows,
                        int64_t num_embeddings, int64_t dim) {
  for (int64_t i = 0; i < num_embeddings * dim; ++i) dtable[i] = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < dim; ++j) dtable[static_cast<int64_t>(idx[r]) * dim + j] += dy[r * dim + j];
}

}  // namespace perceiver::ref
