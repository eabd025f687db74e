// Reference layout changes: plain loops, the oracle for kernels/cpu/layout.
#pragma once

#include <cstdint>

namespace perceiver::ref {

// y[b, s, c] = x[b, c, s] (x.permute(0, 2, 3, 1).reshape(B, -1, C) for NCHW, S = H * W).
template <typename T>
void channels_last_tokens(T* y, const T* x, int64_t B, int64_t C, int64_t S) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t s = 0; s < S; ++s) y[(b * S + s) * C + c] = x[(b * C + c) * S + s];
}

// dx[b, c, s] = dy[b, s, c].
template <typename T>
void channels_last_tokens_backward(T* dx, const T* dy, int64_t B, int64_t C, int64_t S) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t s = 0; s < S; ++s) dx[(b * C + c) * S + s] = dy[(b * S + s) * C + c];
}

}  // namespace perceiver::ref
