// Fast CPU elementwise kernels: broadcast add, sub/mul/scale, in-place updates, the broadcast
// backward (sum over leading rows), leading expansion and last-dim concat/split. Never throw.
#pragma once

#include <cstdint>

namespace perceiver::cpu {

// out[r, j] = a[r, j] + b[j]: b (cols) repeated over rows (rows = 1: plain add).
// out, a (rows, cols), e.g. (B, N*C) + latents (N*C) or (B*N, C) + bias (C).
void add_forward(float* out, const float* a, const float* b, int64_t rows, int64_t cols);
void sub_forward(float* out, const float* a, const float* b, int64_t n);  // out = a - b, (n)
void mul_forward(float* out, const float* a, const float* b, int64_t n);  // out = a * b, (n)
void scale_forward(float* out, const float* x, float s, int64_t n);       // out = s * x, (n)
// out = log(x + eps); dx = dy / (x + eps). x + eps must be positive (log of a power, eps > 0).
void log_forward(float* out, const float* x, float eps, int64_t n);
void log_backward(float* dx, const float* dy, const float* x, float eps, int64_t n);
void axpy_inplace(float* dst, float alpha, const float* src, int64_t n);  // dst += alpha src

// out[j] = sum_r x[r, j]: the backward of add's broadcast and of expand_leading.
// out (cols); x (rows, cols). Per-chunk partials reduced in chunk order (deterministic).
void sum_to_forward(float* out, const float* x, int64_t rows, int64_t cols);
// The same sum accumulated in double, rows in order for every column (a linear layer's bias
// gradient): the result does not depend on the thread count.
void sum_rows_f64(float* out, const float* x, int64_t rows, int64_t cols);

// y[r, j] += b[j]: a bias row added to every row of y (rows, cols) in place.
void add_row_inplace(float* y, const float* b, int64_t rows, int64_t cols);

// out[r, :] = x for r < n.  out (n, numel); x (numel), e.g. latents (N, C) -> (B, N, C).
void expand_leading_forward(float* out, const float* x, int64_t n, int64_t numel);

// out[r] = [a[r], b[r]].  out (rows, C1 + C2); a (rows, C1); b (rows, C2).
void concat_last_forward(float* out, const float* a, const float* b, int64_t rows, int64_t c1,
                         int64_t c2);
// Inverse of concat: a[r] = x[r, :C1], b[r] = x[r, C1:].  x (rows, C1 + C2).
void split_last_forward(float* a, float* b, const float* x, int64_t rows, int64_t c1, int64_t c2);

}  // namespace perceiver::cpu
