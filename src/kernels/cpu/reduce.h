// Fast CPU reductions: mean over one axis (and its backward), centring along an axis and a
// deterministic full sum.
// The tensor is viewed as (outer, len, inner) around the reduced axis. Never throw.
#pragma once

#include <cstdint>
#include <functional>

namespace perceiver::cpu {

// y[o, i] = (1 / len) sum_l x[o, l, i].  y (outer, inner); x (outer, len, inner),
// e.g. mean over latents: x (B, N, C) -> y (B, C) with outer = B, len = N, inner = C.
void mean_forward(float* y, const float* x, int64_t outer, int64_t len, int64_t inner);
// dx[o, l, i] = dy[o, i] / len.  dx (outer, len, inner); dy (outer, inner)
void mean_backward(float* dx, const float* dy, int64_t outer, int64_t len, int64_t inner);
// y[o, l, i] = x[o, l, i] - (1 / len) sum_l' x[o, l', i]: each (o, i) line minus its mean, e.g. a
// per-utterance mean over the time frames of (B, T, F) features. y may alias x. The map is a
// symmetric projection, so its backward is the same call on dy.  x, y (outer, len, inner)
void center(float* y, const float* x, int64_t outer, int64_t len, int64_t inner);
// y[o, l, i] = (x[o, l, i] - m[o, i]) * rstd[o, i], m the line's mean over l, rstd =
// 1 / sqrt(var + eps) with the biased variance: each (o, i) line standardised, e.g. per-utterance
// mean and variance normalisation of (B, T, F) features over T. rstd (outer, inner) is kept for
// the backward. y may alias x.  x, y (outer, len, inner)
void standardize(float* y, float* rstd, const float* x, int64_t outer, int64_t len, int64_t inner, float eps);
// dx = rstd * (dy - mean_l(dy) - y * mean_l(dy * y)) per (o, i) line.  dx, dy, y (outer, len, inner)
void standardize_backward(float* dx, const float* dy, const float* y, const float* rstd, int64_t outer, int64_t len,
                          int64_t inner);

// *out = sum_i x[i], accumulated in double over fixed-size blocks summed in order, so the
// result does not depend on the thread count.  x (n)
void sum_all_forward(float* out, const float* x, int64_t n);

// sum over fixed blocks [i0, i1) of [0, n) of block_sum(i0, i1), blocks in parallel, added in
// block order: deterministic whatever the thread count (shared with the losses).
double blocked_sum(int64_t n, const std::function<double(int64_t, int64_t)>& block_sum);

// Number of NaN/Inf values in x (n); *first = index of the first one (-1 when none).
int64_t count_nonfinite(const float* x, int64_t n, int64_t* first);
// The same for bf16 values (exponent bits all ones).
int64_t count_nonfinite_bf16(const uint16_t* x, int64_t n, int64_t* first);

}  // namespace perceiver::cpu
