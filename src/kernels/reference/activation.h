// Reference activations (exact-erf GELU, ReLU, softmax): plain scalar templates, run in double
// by the tests as the oracle for kernels/cpu/activation.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace perceiver::ref {

// y = 0.5 x (1 + erf(x / sqrt 2))  (torch.nn.GELU())
template <typename T>
void gelu_forward(T* y, const T* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = T(0.5) * x[i] * (T(1) + std::erf(x[i] / std::sqrt(T(2))));
}

// dx = dy (Phi(x) + x phi(x))
template <typename T>
void gelu_backward(T* dx, const T* dy, const T* x, int64_t n) {
  const T pi = std::acos(T(-1));
  for (int64_t i = 0; i < n; ++i) {
    const T cdf = T(0.5) * (T(1) + std::erf(x[i] / std::sqrt(T(2))));
    const T pdf = std::exp(-x[i] * x[i] / T(2)) / std::sqrt(T(2) * pi);
    dx[i] = dy[i] * (cdf + x[i] * pdf);
  }
}

template <typename T>
void relu_forward(T* y, const T* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
}

template <typename T>
void relu_backward(T* dx, const T* dy, const T* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > T(0) ? dy[i] : T(0);
}

// y, x (rows, C): y = exp(x - max) / sum exp(x - max) per row
template <typename T>
void softmax_forward(T* y, const T* x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const T mx = *std::max_element(xr, xr + cols);
    T s = 0;
    for (int64_t i = 0; i < cols; ++i) s += (yr[i] = std::exp(xr[i] - mx));
    for (int64_t i = 0; i < cols; ++i) yr[i] /= s;
  }
}

// dx = y (dy - sum(dy y)) per row
template <typename T>
void softmax_backward(T* dx, const T* dy, const T* y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    T dot = 0;
    for (int64_t i = 0; i < cols; ++i) dot += dy[r * cols + i] * y[r * cols + i];
    for (int64_t i = 0; i < cols; ++i) dx[r * cols + i] = y[r * cols + i] * (dy[r * cols + i] - dot);
  }
}

}  // namespace perceiver::ref
