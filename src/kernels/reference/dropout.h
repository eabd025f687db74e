// Reference dropout given a mask (inverted dropout, torch.nn.Dropout): plain scalar templates,
// the oracle for kernels/cpu/dropout. The random mask itself is checked statistically in tests.
#pragma once

#include <cstdint>

namespace perceiver::ref {

// y = x * mask; x, mask, y (n)
template <typename T>
void dropout_forward(T* y, const T* x, const T* mask, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * mask[i];
}

// dx = dy * mask
template <typename T>
void dropout_backward(T* dx, const T* dy, const T* mask, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * mask[i];
}

// drop path given the per-example keep values: y[r, :] = x[r, :] * keep[r]; x, y (rows, row_len)
template <typename T>
void drop_path_forward(T* y, const T* x, const T* keep, int64_t rows, int64_t row_len) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < row_len; ++j) y[r * row_len + j] = x[r * row_len + j] * keep[r];
}

// dx[r, :] = dy[r, :] * keep[r]
template <typename T>
void drop_path_backward(T* dx, const T* dy, const T* keep, int64_t rows, int64_t row_len) {
  drop_path_forward(dx, dy, keep, rows, row_len);
}

}  // namespace perceiver::ref
