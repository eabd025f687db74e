// Fast CPU embedding lookup (torch.nn.Embedding) and its scatter-add backward. Indices are
// assumed in range (validated by ops/embedding.cpp). Never throw.
#pragma once

#include <cstdint>

namespace perceiver::cpu {

// y[r, :] = table[idx[r], :].  y (rows, D); idx (rows); table (V, D).
void embedding_forward(float* y, const int32_t* idx, const float* table, int64_t rows, int64_t dim);

// dtable = 0; dtable[idx[r], :] += dy[r, :] (repeated indices accumulate, in row order).
// dtable (V, D); dy (rows, D); idx (rows).
void embedding_backward(float* dtable, const float* dy, const int32_t* idx, int64_t rows,
                        int64_t num_embeddings, int64_t dim);

}  // namespace perceiver::cpu
