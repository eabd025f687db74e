// Reference keys and values from [own channels, shared channels] (kernels/cpu/kv_projection.h):
// the rows [x_bm, s_m] written out, LayerNorm, then the two linear layers; backward by the same
// chain (linear, then LayerNorm backward). Plain scalar templates, run in double by the tests.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/reference/layer_norm.h"

namespace perceiver::ref {

// x (B, M, Cx), s (M, Cs) -> the rows [x_bm, s_m] (B M, C)
template <typename T>
std::vector<T> kv_projection_rows(const T* x, const T* s, int64_t b_all, int64_t m_all, int64_t cx, int64_t cs) {
  const int64_t c_all = cx + cs;
  std::vector<T> u(static_cast<size_t>(b_all * m_all * c_all));
  for (int64_t b = 0; b < b_all; ++b)
    for (int64_t m = 0; m < m_all; ++m) {
      T* row = u.data() + (b * m_all + m) * c_all;
      for (int64_t c = 0; c < cx; ++c) row[c] = x[(b * m_all + m) * cx + c];
      for (int64_t c = 0; c < cs; ++c) row[cx + c] = s[m * cs + c];
    }
  return u;
}

// k (B M, Dk) = LN(u) wk^T + bk, v (B M, Dv) likewise
template <typename T>
void kv_projection_forward(T* k, T* v, const T* x, const T* s, const T* gamma, const T* beta, const T* wk,
                           const T* bk, const T* wv, const T* bv, T eps, int64_t b_all, int64_t m_all, int64_t cx,
                           int64_t cs, int64_t dk, int64_t dv) {
  const int64_t rows = b_all * m_all, c_all = cx + cs;
  const std::vector<T> u = kv_projection_rows(x, s, b_all, m_all, cx, cs);
  std::vector<T> n(u.size()), mean(static_cast<size_t>(rows)), rstd(mean.size());
  layer_norm_forward(n.data(), mean.data(), rstd.data(), u.data(), gamma, beta, rows, c_all, eps);
  auto project = [&](T* y, const T* w, const T* bias, int64_t dout) {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t d = 0; d < dout; ++d) {
        T acc = bias[d];
        for (int64_t c = 0; c < c_all; ++c) acc += n[static_cast<size_t>(i * c_all + c)] * w[d * c_all + c];
        y[i * dout + d] = acc;
      }
  };
  project(k, wk, bk, dk);
  project(v, wv, bv, dv);
}

// Gradients of the forward above given dk, dv: dx (B M, Cx), dgamma, dbeta (C), dwk, dbk, dwv, dbv
template <typename T>
void kv_projection_backward(T* dx, T* dgamma, T* dbeta, T* dwk, T* dbk, T* dwv, T* dbv, const T* dk, const T* dv,
                            const T* x, const T* s, const T* gamma, const T* beta, const T* wk, const T* wv, T eps,
                            int64_t b_all, int64_t m_all, int64_t cx, int64_t cs, int64_t nk, int64_t nv) {
  const int64_t rows = b_all * m_all, c_all = cx + cs;
  const std::vector<T> u = kv_projection_rows(x, s, b_all, m_all, cx, cs);
  std::vector<T> n(u.size()), mean(static_cast<size_t>(rows)), rstd(mean.size());
  layer_norm_forward(n.data(), mean.data(), rstd.data(), u.data(), gamma, beta, rows, c_all, eps);
  std::vector<T> dn(u.size(), T(0));  // gradient of LN(u)
  auto linear_back = [&](const T* dy, const T* w, T* dw, T* db, int64_t dout) {
    for (int64_t d = 0; d < dout; ++d) {
      db[d] = 0;
      for (int64_t c = 0; c < c_all; ++c) dw[d * c_all + c] = 0;
    }
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t d = 0; d < dout; ++d) {
        const T g = dy[i * dout + d];
        db[d] += g;
        for (int64_t c = 0; c < c_all; ++c) {
          dw[d * c_all + c] += g * n[static_cast<size_t>(i * c_all + c)];
          dn[static_cast<size_t>(i * c_all + c)] += g * w[d * c_all + c];
        }
      }
  };
  linear_back(dk, wk, dwk, dbk, nk);
  linear_back(dv, wv, dwv, dbv, nv);
  std::vector<T> du(u.size());
  layer_norm_backward(du.data(), dgamma, dbeta, dn.data(), u.data(), gamma, mean.data(), rstd.data(), rows, c_all);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t c = 0; c < cx; ++c) dx[i * cx + c] = du[static_cast<size_t>(i * c_all + c)];
}

}  // namespace perceiver::ref
