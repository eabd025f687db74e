// Embedding lookup (torch.nn.Embedding).
#pragma once

#include "perceiver/core/tensor.h"

namespace perceiver::ops {

// indices int32 (...), table (V, D) -> (..., D). Indices outside [0, V) are an error.
Tensor embedding(const Tensor& indices, const Tensor& table);
// Scatter-adds dy rows into a zero (V, D) gradient.
Tensor embedding_backward(const Tensor& dy, const Tensor& indices, int64_t num_embeddings);

}  // namespace perceiver::ops
