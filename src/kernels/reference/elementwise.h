// Reference elementwise ops (broadcast add, sub, mul, scale, sum_to, expand, concat/split):
// plain scalar templates, run in double by the tests as the oracle for kernels/cpu/elementwise.
#pragma once

#include <cmath>

#include <cstdint>

namespace perceiver::ref {

// out, a (rows, cols); b (cols) repeated over rows
template <typename T>
void add_forward(T* out, const T* a, const T* b, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) out[r * cols + j] = a[r * cols + j] + b[j];
}

template <typename T>
void sub_forward(T* out, const T* a, const T* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] - b[i];
}

template <typename T>
void mul_forward(T* out, const T* a, const T* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

template <typename T>
void scale_forward(T* out, const T* x, T s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = s * x[i];
}

template <typename T>
void log_forward(T* out, const T* x, T eps, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = std::log(x[i] + eps);
}

template <typename T>
void log_backward(T* dx, const T* dy, const T* x, T eps, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] / (x[i] + eps);
}

template <typename T>
void axpy_inplace(T* dst, T alpha, const T* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += alpha * src[i];
}

// out (cols) = sum over rows of x (rows, cols)
template <typename T>
void sum_to_forward(T* out, const T* x, int64_t rows, int64_t cols) {
  for (int64_t j = 0; j < cols; ++j) out[j] = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) out[j] += x[r * cols + j];
}

// out (n, numel) = x (numel) repeated
template <typename T>
void expand_leading_forward(T* out, const T* x, int64_t n, int64_t numel) {
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < numel; ++j) out[r * numel + j] = x[j];
}

// out (rows, c1 + c2) = [a (rows, c1), b (rows, c2)]
template <typename T>
void concat_last_forward(T* out, const T* a, const T* b, int64_t rows, int64_t c1, int64_t c2) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < c1; ++j) out[r * (c1 + c2) + j] = a[r * c1 + j];
    for (int64_t j = 0; j < c2; ++j) out[r * (c1 + c2) + c1 + j] = b[r * c2 + j];
  }
}

template <typename T>
void split_last_forward(T* a, T* b, const T* x, int64_t rows, int64_t c1, int64_t c2) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < c1; ++j) a[r * c1 + j] = x[r * (c1 + c2) + j];
    for (int64_t j = 0; j < c2; ++j) b[r * c2 + j] = x[r * (c1 + c2) + c1 + j];
  }
}

}  // namespace perceiver::ref
