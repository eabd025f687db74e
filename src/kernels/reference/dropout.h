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

}  // namespace perceiver::ref
