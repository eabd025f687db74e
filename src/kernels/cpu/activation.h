// Fast CPU activations: exact-erf GELU, ReLU and numerically stable softmax over the last dim.
// Raw-pointer kernels; never throw.
#pragma once

#include <cstdint>

namespace perceiver::cpu {

// GELU, exact erf form (torch.nn.GELU()): y = x * Phi(x), Phi(x) = 0.5 (1 + erf(x / sqrt 2)).
// y, x (n) where n = numel, e.g. B*N*4C in the MLP.
void gelu_forward(float* y, const float* x, int64_t n);
// dx = dy * (Phi(x) + x * phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).  dx, dy, x (n)
void gelu_backward(float* dx, const float* dy, const float* x, int64_t n);
// Training's forward: y = gelu(x) and its derivative d = Phi(x) + x * phi(x) in one pass, so
// backward is dx = dy * d (the same bits as gelu_backward). y, d, x (n)
void gelu_forward_with_grad(float* y, float* d, const float* x, int64_t n);

// y = max(x, 0); dx = dy * [x > 0].  All (n).
void relu_forward(float* y, const float* x, int64_t n);
void relu_backward(float* dx, const float* dy, const float* x, int64_t n);

// y_i = exp(x_i - max) / sum_j exp(x_j - max) per row.  y, x (rows, C), e.g. (B*H*N, M).
void softmax_forward(float* y, const float* x, int64_t rows, int64_t cols);
// dx = y * (dy - sum(dy * y)) per row.  dx, dy, y (rows, C)
void softmax_backward(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols);

// One row of softmax: y (C) = softmax(x (C)); returns log(sum_j exp(x_j)) (cross-entropy).
float softmax_row(float* y, const float* x, int64_t cols);

}  // namespace perceiver::cpu
