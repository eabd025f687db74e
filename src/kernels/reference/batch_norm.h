// Reference batch normalisation over (B, C, S), statistics per channel over n = B*S
// (torch.nn.BatchNorm2d): plain scalar templates, run in double by the tests as the oracle for
// kernels/cpu/batch_norm. w and b may be null (weight 1, bias 0).
#pragma once

#include <cmath>
#include <cstdint>

namespace perceiver::ref {

// Training mode: batch mean and biased var normalise; var_unbiased = var * n / (n - 1).
template <typename T>
void batch_norm_train_forward(T* y, T* mean, T* var, T* var_unbiased, const T* x, const T* w,
                              const T* b, int64_t B, int64_t C, int64_t S, T eps) {
  const T n = static_cast<T>(B * S);
  for (int64_t c = 0; c < C; ++c) {
    T m = 0, v = 0;
    for (int64_t bi = 0; bi < B; ++bi)
      for (int64_t i = 0; i < S; ++i) m += x[(bi * C + c) * S + i];
    m /= n;
    for (int64_t bi = 0; bi < B; ++bi)
      for (int64_t i = 0; i < S; ++i) v += (x[(bi * C + c) * S + i] - m) * (x[(bi * C + c) * S + i] - m);
    mean[c] = m;
    var[c] = v / n;
    var_unbiased[c] = v / (n - 1);
    const T r = T(1) / std::sqrt(var[c] + eps);
    for (int64_t bi = 0; bi < B; ++bi)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t k = (bi * C + c) * S + i;
        y[k] = (x[k] - m) * r * (w ? w[c] : T(1)) + (b ? b[c] : T(0));
      }
  }
}

// Eval mode: y = (x - running_mean) / sqrt(running_var + eps) * w + b.
template <typename T>
void batch_norm_inference_forward(T* y, const T* x, const T* w, const T* b, const T* rmean,
                                  const T* rvar, int64_t B, int64_t C, int64_t S, T eps) {
  for (int64_t bi = 0; bi < B; ++bi)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t k = (bi * C + c) * S + i;
        y[k] = (x[k] - rmean[c]) / std::sqrt(rvar[c] + eps) * (w ? w[c] : T(1)) + (b ? b[c] : T(0));
      }
}

// Training-mode backward: dx = w rstd (dy - mean(dy) - xhat mean(dy xhat)); dw = sum dy xhat;
// db = sum dy (all overwritten).
template <typename T>
void batch_norm_train_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                               const T* mean, const T* var, int64_t B, int64_t C, int64_t S, T eps) {
  const T n = static_cast<T>(B * S);
  for (int64_t c = 0; c < C; ++c) {
    const T r = T(1) / std::sqrt(var[c] + eps);
    T sdy = 0, sdyx = 0;
    for (int64_t bi = 0; bi < B; ++bi)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t k = (bi * C + c) * S + i;
        sdy += dy[k];
        sdyx += dy[k] * (x[k] - mean[c]) * r;
      }
    dw[c] = sdyx;
    db[c] = sdy;
    for (int64_t bi = 0; bi < B; ++bi)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t k = (bi * C + c) * S + i;
        const T xhat = (x[k] - mean[c]) * r;
        dx[k] = (w ? w[c] : T(1)) * r * (dy[k] - sdy / n - xhat * sdyx / n);
      }
  }
}

// Eval-mode backward: dx = dy w s, dw = sum dy (x - rmean) s, db = sum dy, s = 1/sqrt(rvar + eps).
template <typename T>
void batch_norm_inference_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                                   const T* rmean, const T* rvar, int64_t B, int64_t C, int64_t S,
                                   T eps) {
  for (int64_t c = 0; c < C; ++c) {
    const T s = T(1) / std::sqrt(rvar[c] + eps);
    dw[c] = db[c] = 0;
    for (int64_t bi = 0; bi < B; ++bi)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t k = (bi * C + c) * S + i;
        dw[c] += dy[k] * (x[k] - rmean[c]) * s;
        db[c] += dy[k];
        dx[k] = dy[k] * (w ? w[c] : T(1)) * s;
      }
  }
}

}  // namespace perceiver::ref
