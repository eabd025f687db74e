// Scalar multi-head attention oracle for tests (run in double). Heads are contiguous channel
// slices; out = softmax(q k^T * scale + mask) v per head, lse = log sum_m exp(s_m). A query whose
// keys are all masked to -inf gets out = 0 and lse = -inf (as the cpu kernel does).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace perceiver::reference {

struct AttentionDims {
  int64_t batch, n, m, heads, dqk, dv;  // q (B,N,H*Dqk), k (B,M,H*Dqk), v (B,M,H*Dv)
};

// mask: nullptr or (B, M) additive. out (B, N, H*Dv), lse (B, H, N).
template <typename T>
void attention_forward(const AttentionDims& d, const T* q, const T* k, const T* v, const T* mask,
                       T scale, T* out, T* lse) {
  const int64_t qw = d.heads * d.dqk, vw = d.heads * d.dv;
  std::vector<T> s(static_cast<size_t>(d.m));
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.heads; ++h)
      for (int64_t i = 0; i < d.n; ++i) {
        const T* qi = q + (b * d.n + i) * qw + h * d.dqk;
        T mx = -std::numeric_limits<T>::infinity();
        for (int64_t j = 0; j < d.m; ++j) {
          const T* kj = k + (b * d.m + j) * qw + h * d.dqk;
          T dot = 0;
          for (int64_t c = 0; c < d.dqk; ++c) dot += qi[c] * kj[c];
          s[j] = dot * scale + (mask ? mask[b * d.m + j] : T(0));
          mx = std::max(mx, s[j]);
        }
        T* oi = out + (b * d.n + i) * vw + h * d.dv;
        T* li = lse + (b * d.heads + h) * d.n + i;
        for (int64_t c = 0; c < d.dv; ++c) oi[c] = 0;
        if (mx == -std::numeric_limits<T>::infinity()) {
          *li = mx;
          continue;
        }
        T sum = 0;
        for (int64_t j = 0; j < d.m; ++j) {
          const T p = std::exp(s[j] - mx);
          sum += p;
          const T* vj = v + (b * d.m + j) * vw + h * d.dv;
          for (int64_t c = 0; c < d.dv; ++c) oi[c] += p * vj[c];
        }
        for (int64_t c = 0; c < d.dv; ++c) oi[c] /= sum;
        *li = mx + std::log(sum);
      }
}

}  // namespace perceiver::reference
