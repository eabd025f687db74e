// 2-D convolution, NCHW float32 (torch.nn.functional.conv2d with groups = 1, dilation 1, zero
// padding). Serves HF's image preprocessor stems (7x7/2 pad 3 no bias; conv1x1 with bias) and
// ViT-style patch embedding (kernel = stride = patch, bias). Lowered to im2col + cpu::gemm.
#pragma once

#include "perceiver/core/tensor.h"

namespace perceiver::ops {

// x (B, Cin, H, W), w (Cout, Cin, kh, kw), b (Cout) or undefined -> y (B, Cout, OH, OW) with
// OH = floor((H + 2 pad_h - kh) / stride_h) + 1, OW = floor((W + 2 pad_w - kw) / stride_w) + 1.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride_h, int stride_w,
              int pad_h, int pad_w);

struct Conv2dGrads {
  Tensor dx;  // (B, Cin, H, W)       col2im(w^T dy)
  Tensor dw;  // (Cout, Cin, kh, kw)  sum_b dy_b im2col(x_b)^T
  Tensor db;  // (Cout)               sum over b, oh, ow of dy
};
// Gradients of conv2d for cotangent dy (B, Cout, OH, OW); the ones not asked for stay undefined.
Conv2dGrads conv2d_backward(const Tensor& dy, const Tensor& x, const Tensor& w, int stride_h,
                            int stride_w, int pad_h, int pad_w, bool need_dx, bool need_dw,
                            bool need_db);

}  // namespace perceiver::ops
