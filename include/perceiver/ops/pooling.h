// 2-D max and average pooling, NCHW float32. Max pooling: (torch.nn.functional.max_pool2d with return_indices, dilation 1,
// floor rounding). Serves HF's conv stem: MaxPool 3x3, stride 2, no padding.
#pragma once

#include "perceiver/core/tensor.h"

namespace perceiver::ops {

struct MaxPoolOut {
  Tensor y;        // (B, C, OH, OW), OH = floor((H + 2 ph - kh) / sh) + 1, OW likewise
  Tensor indices;  // int32 (B, C, OH, OW): argmax as ih * W + iw within its (b, c) plane
};
// Padding acts as -inf; ties keep the first maximum in row-major window order; NaN propagates
// (torch's `val > max || isnan(val)`). Requires pad <= kernel / 2, as torch does.
MaxPoolOut max_pool2d(const Tensor& x, int kh, int kw, int sh, int sw, int ph, int pw);

// dx (input_shape) = zeros, then dx[b, c, indices[b, c, o]] += dy[b, c, o] (overlapping windows
// accumulate).
Tensor max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& input_shape);

// 2-D average pooling without padding (torch avg_pool2d, padding 0, floor rounding; BoTNet's
// strided self-attention block pools 2 x 2 / 2): y (B, C, OH, OW) = the mean of each window.
Tensor avg_pool2d(const Tensor& x, int kh, int kw, int sh, int sw);
// dx (input_shape): each window's dy / (kh kw) added to its elements.
Tensor avg_pool2d_backward(const Tensor& dy, const Shape& input_shape, int kh, int kw, int sh, int sw);

}  // namespace perceiver::ops
