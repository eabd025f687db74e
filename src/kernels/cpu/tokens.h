// Token-axis data movement on (outer, tokens, inner) float arrays: block copies along axis 1
// (concatenation, slicing and its gradient), row gathers and their scatter-add gradient.
// Raw pointers, never throw; ops/tokens.cpp validates.
#pragma once

#include <cstdint>

namespace perceiver::cpu {

// dst[b, dst_start + j, :] = src[b, src_start + j, :] for j < len, b < outer.
void copy_tokens(float* dst, int64_t dst_tokens, int64_t dst_start, const float* src,
                 int64_t src_tokens, int64_t src_start, int64_t len, int64_t outer, int64_t inner);

// dst[b, j, :] = src[b, idx[j], :] for j < n.
void gather_tokens_forward(float* dst, const float* src, const int64_t* idx, int64_t n,
                           int64_t src_tokens, int64_t outer, int64_t inner);

// dx[b, idx[j], :] += dy[b, j, :] (dx must be zeroed or hold a partial sum).
void gather_tokens_backward(float* dx, const float* dy, const int64_t* idx, int64_t n,
                            int64_t x_tokens, int64_t outer, int64_t inner);

}  // namespace perceiver::cpu
