// Losses. Each returns a scalar (shape {}) averaged as PyTorch's default 'mean' reduction.
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

// Optical-flow end-point error: pred, target float32 (..., 2) of (u, v) -> the mean over the
// vectors whose target is known (both components finite, |.| <= 1e9; .flo writes 1e10 for
// unknown) of ||pred - target||_2; 0 when no vector is known. known (optional) receives their count.
Tensor end_point_error(const Tensor& pred, const Tensor& target, int64_t* known = nullptr);
// d/dpred = dloss (pred - target) / (||pred - target|| known), 0 on unknown vectors and where the
// error is exactly 0.
Tensor end_point_error_backward(float dloss, const Tensor& pred, const Tensor& target);

}  // namespace perceiver::ops
