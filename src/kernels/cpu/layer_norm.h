// Fast CPU layer normalisation over the last dimension (torch.nn.LayerNorm, biased variance).
// Raw-pointer kernels; never throw.
#pragma once

#include <cstdint>

namespace perceiver::cpu {

// y = (x - mean) * rstd * w + b, per row; mean, rstd = 1 / sqrt(var + eps) are saved.
// y, x (rows, C); w, b (C); mean, rstd (rows). rows = B*N (or B*M, ...).
void layer_norm_forward(float* y, float* mean, float* rstd, const float* x, const float* w,
                        const float* b, int64_t rows, int64_t cols, float eps);

// With xhat = (x - mean) * rstd and g = dy * w (llm.c layernorm_backward):
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  dw = sum_rows dy * xhat,  db = sum_rows dy.
// dx, dy, x (rows, C); w, dw, db (C); mean, rstd (rows). dw and db are overwritten.
// dw/db are accumulated per thread chunk and reduced in chunk order (deterministic for a fixed
// thread count).
void layer_norm_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                         const float* w, const float* mean, const float* rstd, int64_t rows,
                         int64_t cols);

}  // namespace perceiver::cpu
