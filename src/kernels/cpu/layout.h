// Fast CPU layout kernels (cache-blocked batched transposes). Raw-pointer kernels; never throw.
#pragma once

#include <cstdint>

namespace perceiver::cpu {

// y[b, s, c] = x[b, c, s]: x (B, C, S) -> y (B, S, C).
void channels_last_tokens(float* y, const float* x, int64_t B, int64_t C, int64_t S);

// dx[b, c, s] = dy[b, s, c]: dy (B, S, C) -> dx (B, C, S).
void channels_last_tokens_backward(float* dx, const float* dy, int64_t B, int64_t C, int64_t S);

}  // namespace perceiver::cpu
