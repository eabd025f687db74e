// Token-axis block copies, gathers and scatter-adds (see tokens.h).
#include "kernels/cpu/tokens.h"

#include <cstring>

namespace perceiver::cpu {

void copy_tokens(float* dst, int64_t dst_tokens, int64_t dst_start, const float* src,
                 int64_t src_tokens, int64_t src_start, int64_t len, int64_t outer, int64_t inner) {
  for (int64_t b = 0; b < outer; ++b)
    std::memcpy(dst + (b * dst_tokens + dst_start) * inner, src + (b * src_tokens + src_start) * inner,
                static_cast<size_t>(len * inner) * sizeof(float));
}

void gather_tokens_forward(float* dst, const float* src, const int64_t* idx, int64_t n,
                           int64_t src_tokens, int64_t outer, int64_t inner) {
  for (int64_t b = 0; b < outer; ++b)
    for (int64_t j = 0; j < n; ++j)
      std::memcpy(dst + (b * n + j) * inner, src + (b * src_tokens + idx[j]) * inner,
                  static_cast<size_t>(inner) * sizeof(float));
}

void gather_tokens_backward(float* dx, const float* dy, const int64_t* idx, int64_t n,
                            int64_t x_tokens, int64_t outer, int64_t inner) {
  for (int64_t b = 0; b < outer; ++b)
    for (int64_t j = 0; j < n; ++j) {
      float* d = dx + (b * x_tokens + idx[j]) * inner;
      const float* s = dy + (b * n + j) * inner;
#pragma omp simd
      for (int64_t c = 0; c < inner; ++c) d[c] += s[c];
    }
}

}  // namespace perceiver::cpu
