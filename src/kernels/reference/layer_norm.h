// Reference layer norm (torch.nn.LayerNorm, biased variance): plain scalar templates, run in
// double by the tests as the oracle for kernels/cpu/layer_norm.
#pragma once

#include <cmath>
#include <cstdint>

namespace perceiver::ref {

// y, x (rows, C); w, b (C); mean, rstd (rows)
template <typename T>
void layer_norm_forward(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t rows,
                        int64_t cols, T eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T m = 0;
    for (int64_t i = 0; i < cols; ++i) m += xr[i];
    m /= static_cast<T>(cols);
    T v = 0;
    for (int64_t i = 0; i < cols; ++i) v += (xr[i] - m) * (xr[i] - m);
    v /= static_cast<T>(cols);
    const T s = T(1) / std::sqrt(v + eps);
    for (int64_t i = 0; i < cols; ++i) y[r * cols + i] = (xr[i] - m) * s * w[i] + b[i];
    mean[r] = m;
    rstd[r] = s;
  }
}

// dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy w; dw = sum dy xhat; db = sum dy (overwritten).
template <typename T>
void layer_norm_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const T* mean,
                         const T* rstd, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < cols; ++i) dw[i] = db[i] = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    const T* dyr = dy + r * cols;
    T sg = 0, sgx = 0;
    for (int64_t i = 0; i < cols; ++i) {
      const T xhat = (xr[i] - mean[r]) * rstd[r];
      sg += dyr[i] * w[i];
      sgx += dyr[i] * w[i] * xhat;
      dw[i] += dyr[i] * xhat;
      db[i] += dyr[i];
    }
    sg /= static_cast<T>(cols);
    sgx /= static_cast<T>(cols);
    for (int64_t i = 0; i < cols; ++i) {
      const T xhat = (xr[i] - mean[r]) * rstd[r];
      dx[r * cols + i] = (dyr[i] * w[i] - sg - xhat * sgx) * rstd[r];
    }
  }
}

}  // namespace perceiver::ref
