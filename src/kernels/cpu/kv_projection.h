// Keys and values of a cross-attention whose input rows are [x_bm, s_m]: each example's own
// channels x (B, M, Cx) followed by channels s (M, Cs) that every example shares (the Perceiver's
// Fourier position features):
//   [K | V]_bm = LN([x_bm, s_m]) W^T + bias,   W = [Wk; Wv] (D = Dk + Dv rows, C = Cx + Cs)
// Written with W~ = W diag(gamma), g = W~ 1, c0 = W beta + bias and F = s W~s^T (M, D), this is
//   r_bm (x_bm W~x^T + F_m - mu_bm g) + c0,   mu, r = the row's mean and 1 / sqrt(var + eps),
// where F, g, c0 are computed once for the batch and mu, var come from x_bm and per-m statistics
// of s: O(B M Cx D + M Cs D) instead of O(B M C D), and LN([x, s]) is never formed. The terms
// r (. - mu g) cancel like any LayerNorm written as E[x W] - E[x] W: fine for features of moderate
// mean (pixels, Fourier features); the tests bound it against a double reference.
// Raw pointers, never throw; ops/kv_projection validates and allocates.
#pragma once

#include <cstdint>

namespace perceiver::cpu {

struct KvProjectionShape {
  int64_t batch = 0, inputs = 0;          // B, M
  int64_t own = 0, shared = 0;            // Cx, Cs (C = Cx + Cs)
  int64_t key_dim = 0, value_dim = 0;     // Dk, Dv
  int64_t channels() const { return own + shared; }
  int64_t out_dim() const { return key_dim + value_dim; }
};

// Floats of workspace the forward and backward need.
int64_t kv_projection_forward_workspace(const KvProjectionShape& sh);
int64_t kv_projection_backward_workspace(const KvProjectionShape& sh);

// x (B, M, Cx), s (M, Cs), gamma, beta (C), wk (Dk, C), bk (Dk), wv (Dv, C), bv (Dv) ->
// k (B, M, Dk), v (B, M, Dv), mean, rstd (B, M).
void kv_projection_forward(const KvProjectionShape& sh, const float* x, const float* s, const float* gamma,
                           const float* beta, const float* wk, const float* bk, const float* wv, const float* bv,
                           float eps, float* k, float* v, float* mean, float* rstd, float* workspace);

// dk (B, M, Dk), dv (B, M, Dv) -> dgamma, dbeta (C), dwk, dbk, dwv, dbv, and dx (B, M, Cx) when dx
// is not null. mean and rstd are the forward's.
void kv_projection_backward(const KvProjectionShape& sh, const float* dk, const float* dv, const float* x,
                            const float* s, const float* gamma, const float* beta, const float* wk, const float* wv,
                            const float* mean, const float* rstd, float* dx, float* dgamma, float* dbeta,
                            float* dwk, float* dbk, float* dwv, float* dbv, float* workspace);

}  // namespace perceiver::cpu
