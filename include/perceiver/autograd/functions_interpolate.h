// Differentiable resampling of token grids (namespace ag): bicubic interpolation of NCHW maps and
// the token -> channels-first layout move that feeds it (ViT's interpolate_pos_encoding reshapes
// a (1, h*w, D) position table to (1, D, h, w), resamples, and flattens back with
// ag::channels_last_tokens). Gradient rules live in src/autograd/functions_interpolate.cpp.
#pragma once

#include "perceiver/core/tensor.h"

namespace perceiver::ag {

// torch.nn.functional.interpolate(x, size=(out_h, out_w), mode="bicubic", align_corners=...):
// x (B, C, H, W) -> (B, C, out_h, out_w).
Tensor interpolate_bicubic(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners = false);

// (B, N, C) tokens of a row-major h x w grid -> (B, C, h, w): x.transpose(1, 2).reshape(B, C, h, w),
// the inverse of channels_last_tokens. Requires N == h * w.
Tensor tokens_to_channels_first(const Tensor& x, int64_t h, int64_t w);

}  // namespace perceiver::ag
