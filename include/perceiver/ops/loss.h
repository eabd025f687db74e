// Losses. Both return a scalar (shape {}) averaged as PyTorch's default 'mean' reduction.
#pragma once

#include "perceiver/core/tensor.h"

namespace perceiver::ops {

// Cross-entropy with label smoothing (torch.nn.functional.cross_entropy semantics):
// per row, loss = (1 - s) * (-log p[y]) + s * mean_k(-log p[k]); rows with label < 0 are
// ignored (HF's -100); the result is the mean over the rows kept.
// logits (R, K), labels int32 (R) -> loss (), probs (R, K) saved for backward.
struct CrossEntropyOut {
  Tensor loss;
  Tensor probs;
};
CrossEntropyOut cross_entropy(const Tensor& logits, const Tensor& labels, float smoothing);
// dlogits = dloss * (p - ((1 - s) onehot + s / K)) / kept_rows
Tensor cross_entropy_backward(float dloss, const Tensor& probs, const Tensor& labels,
                              float smoothing);

// Mean squared error: mean((pred - target)^2) over all elements.
Tensor mse(const Tensor& pred, const Tensor& target);
Tensor mse_backward(float dloss, const Tensor& pred, const Tensor& target);  // d/dpred

}  // namespace perceiver::ops
