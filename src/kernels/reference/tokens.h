// Scalar token-axis oracles for tests (run in double): gather rows of axis 1 of a
// (outer, tokens, inner) array; concatenation and slicing are gathers with consecutive indices.
#pragma once

#include <cstdint>
#include <vector>

namespace perceiver::ref {

// y[b, j, c] = x[b, idx[j], c]; y has outer x idx.size() x inner elements.
template <typename T>
std::vector<T> gather_tokens(const std::vector<T>& x, int64_t outer, int64_t tokens, int64_t inner,
                             const std::vector<int64_t>& idx) {
  const int64_t n = static_cast<int64_t>(idx.size());
  std::vector<T> y(static_cast<size_t>(outer * n * inner));
  for (int64_t b = 0; b < outer; ++b)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t c = 0; c < inner; ++c) y[(b * n + j) * inner + c] = x[(b * tokens + idx[j]) * inner + c];
  return y;
}

}  // namespace perceiver::ref
