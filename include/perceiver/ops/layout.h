// Layout changes between conv feature maps and token sequences.
#pragma once

#include "perceiver/core/tensor.h"

namespace perceiver::ops {

// (B, C, *spatial) -> (B, N, C), N = prod(spatial): HF's conv-feature flattening
// x.permute(0, 2, 3, 1).reshape(B, -1, C) (row-major over the spatial axes). Rank >= 3.
Tensor channels_last_tokens(const Tensor& x);

// Gradient: dy (B, N, C) -> dx with input_shape (B, C, *spatial), the inverse permutation.
Tensor channels_last_tokens_backward(const Tensor& dy, const Shape& input_shape);

}  // namespace perceiver::ops
