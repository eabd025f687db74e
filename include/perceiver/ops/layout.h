// Layout changes between conv feature maps and token sequences, and neighbourhood (patch) features.
#pragma once

#include "perceiver/core/tensor.h"

namespace perceiver::ops {

// (B, C, *spatial) -> (B, N, C), N = prod(spatial): HF's conv-feature flattening
// x.permute(0, 2, 3, 1).reshape(B, -1, C) (row-major over the spatial axes). Rank >= 3.
Tensor channels_last_tokens(const Tensor& x);

// Gradient: dy (B, N, C) -> dx with input_shape (B, C, *spatial), the inverse permutation.
Tensor channels_last_tokens_backward(const Tensor& dy, const Shape& input_shape);

// Neighbourhood features of a channels-last image, Perceiver IO's 3x3-patch input of the optical
// flow model generalised to odd k: x (B, H, W, C) -> y (B, H, W, k*k*C) with
// y[b, i, j, (u*k + v)*C + c] = x[b, i + u - k/2, j + v - k/2, c], 0 outside the image.
Tensor image_patches(const Tensor& x, int k);

// Gradient: dx[b, i, j, c] = sum over (u, v) of dy[b, i - u + k/2, j - v + k/2, (u*k + v)*C + c]
// (the terms whose output pixel lies inside the image). dy (B, H, W, k*k*C).
Tensor image_patches_backward(const Tensor& dy, const Shape& input_shape, int k);

}  // namespace perceiver::ops
