// Reference reductions (mean over an axis and its backward, centring, standardising, full sum): plain scalar templates,
// run in double by the tests as the oracle for kernels/cpu/reduce.
#pragma once

#include <cmath>
#include <cstdint>

namespace perceiver::ref {

// y (outer, inner) = mean over l of x (outer, len, inner)
template <typename T>
void mean_forward(T* y, const T* x, int64_t outer, int64_t len, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      T s = 0;
      for (int64_t l = 0; l < len; ++l) s += x[(o * len + l) * inner + i];
      y[o * inner + i] = s / static_cast<T>(len);
    }
}

// dx (outer, len, inner) = dy (outer, inner) / len
template <typename T>
void mean_backward(T* dx, const T* dy, int64_t outer, int64_t len, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t l = 0; l < len; ++l)
      for (int64_t i = 0; i < inner; ++i) dx[(o * len + l) * inner + i] = dy[o * inner + i] / static_cast<T>(len);
}

// y (outer, len, inner) = x minus its mean over l
template <typename T>
void center(T* y, const T* x, int64_t outer, int64_t len, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      T s = 0;
      for (int64_t l = 0; l < len; ++l) s += x[(o * len + l) * inner + i];
      const T m = s / static_cast<T>(len);
      for (int64_t l = 0; l < len; ++l) y[(o * len + l) * inner + i] = x[(o * len + l) * inner + i] - m;
    }
}

// y (outer, len, inner) = (x - mean over l) / sqrt(biased variance over l + eps); rstd (outer, inner)
template <typename T>
void standardize(T* y, T* rstd, const T* x, int64_t outer, int64_t len, int64_t inner, T eps) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      T s = 0, v = 0;
      for (int64_t l = 0; l < len; ++l) s += x[(o * len + l) * inner + i];
      const T m = s / static_cast<T>(len);
      for (int64_t l = 0; l < len; ++l) v += (x[(o * len + l) * inner + i] - m) * (x[(o * len + l) * inner + i] - m);
      const T r = 1 / std::sqrt(v / static_cast<T>(len) + eps);
      rstd[o * inner + i] = r;
      for (int64_t l = 0; l < len; ++l) y[(o * len + l) * inner + i] = (x[(o * len + l) * inner + i] - m) * r;
    }
}

template <typename T>
T sum_all(const T* x, int64_t n) {
  T s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return s;
}

// Number of NaN/Inf values; *first = index of the first (-1 when none).
inline int64_t count_nonfinite(const float* x, int64_t n, int64_t* first) {
  int64_t c = 0;
  *first = -1;
  for (int64_t i = 0; i < n; ++i)
    if (std::isnan(x[i]) || std::isinf(x[i])) {
      if (c++ == 0) *first = i;
    }
  return c;
}

}  // namespace perceiver::ref
