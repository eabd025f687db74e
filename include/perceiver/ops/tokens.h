// Token-axis ops on (B, T, ...) float32 arrays: concatenation, slicing and gathering along axis 1,
// with the backward ops the autograd rules call.
#pragma once

#include <vector>

#include "perceiver/core/tensor.h"

namespace perceiver::ops {

// (B, T_i, ...) -> (B, sum T_i, ...); every other dim must agree.
Tensor concat_tokens(const std::vector<Tensor>& xs);
// Rows [start, start + len) of axis 1: (B, T, ...) -> (B, len, ...).
Tensor slice_tokens(const Tensor& x, int64_t start, int64_t len);
// Gradient of slice_tokens: dy (B, len, ...) placed at rows [start, start + len) of zeros(x_shape).
Tensor slice_tokens_backward(const Tensor& dy, const Shape& x_shape, int64_t start);
// Rows idx of axis 1 in the given order: (B, T, ...) -> (B, n, ...).
Tensor gather_tokens(const Tensor& x, const std::vector<int64_t>& idx);
// Gradient of gather_tokens: scatter-add of dy (B, n, ...) into zeros(x_shape) at rows idx.
Tensor gather_tokens_backward(const Tensor& dy, const Shape& x_shape, const std::vector<int64_t>& idx);

}  // namespace perceiver::ops
