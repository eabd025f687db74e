// Bicubic resampling of NCHW float32 maps: torch.nn.functional.interpolate(x, size=(OH, OW),
// mode="bicubic", align_corners=...) with PyTorch's kernel (Keys' cubic, A = -0.75; taps beyond
// the border clamp to the edge sample; no antialiasing). Serves ViT's position-embedding
// interpolation (HF interpolate_pos_encoding) and works for any (H, W) -> (OH, OW), non-square
// and downsampling included.
#pragma once

#include "perceiver/core/tensor.h"

namespace perceiver::ops {

// x (B, C, H, W) -> (B, C, OH, OW); OH, OW >= 1. Same size returns a copy of x.
Tensor interpolate_bicubic(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners = false);

// Gradient for cotangent dy (B, C, OH, OW) -> dx with input_shape (B, C, H, W): every output's
// 16 weights scatter dy back to the (clamped) taps, so border samples collect the clamped taps.
Tensor interpolate_bicubic_backward(const Tensor& dy, const Shape& input_shape, bool align_corners = false);

}  // namespace perceiver::ops
