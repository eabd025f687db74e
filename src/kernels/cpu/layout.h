// Fast CPU layout kernels (cache-blocked batched transposes, patch gathers). Raw-pointer kernels; never throw.
#pragma once

#include <cstdint>

namespace perceiver::cpu {

// y[b, s, c] = x[b, c, s]: x (B, C, S) -> y (B, S, C).
void channels_last_tokens(float* y, const float* x, int64_t B, int64_t C, int64_t S);

// dx[b, c, s] = dy[b, s, c]: dy (B, S, C) -> dx (B, C, S).
void channels_last_tokens_backward(float* dx, const float* dy, int64_t B, int64_t C, int64_t S);

// y[b, i, j, (u*k + v)*C + c] = x[b, i + u - k/2, j + v - k/2, c], 0 outside: x (B, H, W, C),
// y (B, H, W, k*k*C); k odd.
void image_patches(float* y, const float* x, int64_t B, int64_t H, int64_t W, int64_t C, int64_t k);

// dx (B, H, W, C) = the adjoint: every dy element added to the pixel it was copied from.
void image_patches_backward(float* dx, const float* dy, int64_t B, int64_t H, int64_t W, int64_t C, int64_t k);

}  // namespace perceiver::cpu
