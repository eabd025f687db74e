// Fast CPU inverted dropout (torch.nn.Dropout, training mode). The keep/drop decision for
// element i is a counter-based hash of (seed, i), so masks are parallel and reproducible.
#pragma once

#include <cstdint>

namespace perceiver::cpu {

// mask_i = u(seed, i) >= p ? 1 / (1 - p) : 0 with u uniform in [0, 1) (24 bits); y = x * mask.
// y, mask, x (n). p in [0, 1).
void dropout_forward(float* y, float* mask, const float* x, int64_t n, float p, uint64_t seed);
// dx = dy * mask.  dx, dy, mask (n)
void dropout_backward(float* dx, const float* dy, const float* mask, int64_t n);

// Drop path (stochastic depth, Huang et al. 2016): dropout of whole examples. For each of `rows`
// examples keep_r = u(seed, r) >= p ? 1 / (1 - p) : 0 (the same hash as dropout_forward); then
// y[r, :] = x[r, :] * keep_r. y, x (rows, row_len), keep (rows). p in [0, 1).
void drop_path_forward(float* y, float* keep, const float* x, int64_t rows, int64_t row_len, float p, uint64_t seed);
// dx[r, :] = dy[r, :] * keep_r.  dx, dy (rows, row_len), keep (rows)
void drop_path_backward(float* dx, const float* dy, const float* keep, int64_t rows, int64_t row_len);

}  // namespace perceiver::cpu
