// Elementwise activations and softmax.
#pragma once

#include "perceiver/core/tensor.h"

namespace perceiver::ops {

// GELU, exact erf form: y = 0.5 x (1 + erf(x / sqrt(2)))  (torch.nn.GELU(), HF "gelu").
Tensor gelu(const Tensor& x);
Tensor gelu_backward(const Tensor& dy, const Tensor& x);
// Training's forward: y and dy/dx = Phi(x) + x phi(x) in one pass; backward is then dy * grad
// (the same bits as gelu_backward(dy, x), without evaluating Phi again).
struct GeluOut {
  Tensor y, grad;
};
GeluOut gelu_with_grad(const Tensor& x);

// ReLU: y = max(x, 0)
Tensor relu(const Tensor& x);
Tensor relu_backward(const Tensor& dy, const Tensor& x);

// Softmax over the last dimension: y_i = exp(x_i - max) / sum_j exp(x_j - max).
Tensor softmax(const Tensor& x);
// dx = y * (dy - sum(dy * y))
Tensor softmax_backward(const Tensor& dy, const Tensor& y);

}  // namespace perceiver::ops
