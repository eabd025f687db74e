// Reference 2-D max pooling (torch.nn.functional.max_pool2d with indices, dilation 1, floor
// rounding, padding = -inf, first maximum wins, NaN propagates): plain scalar templates, run in
// double by the tests as the oracle for kernels/cpu/pooling.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace perceiver::ref {

struct Pool2dShape {
  int64_t planes, H, W, kh, kw, sh, sw, ph, pw;
  int64_t OH() const { return (H + 2 * ph - kh) / sh + 1; }
  int64_t OW() const { return (W + 2 * pw - kw) / sw + 1; }
};

// y, idx (planes, OH, OW); idx = ih * W + iw of the maximum within its plane.
template <typename T>
void max_pool2d_forward(T* y, int32_t* idx, const T* x, const Pool2dShape& s) {
  const int64_t OH = s.OH(), OW = s.OW();
  for (int64_t p = 0; p < s.planes; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        // Window clipped to the image; the max starts at -inf on the first in-image element.
        const int64_t h0 = std::max<int64_t>(oh * s.sh - s.ph, 0), w0 = std::max<int64_t>(ow * s.sw - s.pw, 0);
        const int64_t h1 = std::min<int64_t>(oh * s.sh - s.ph + s.kh, s.H);
        const int64_t w1 = std::min<int64_t>(ow * s.sw - s.pw + s.kw, s.W);
        T best = -std::numeric_limits<T>::infinity();
        int64_t best_i = h0 * s.W + w0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) {
            const T v = x[(p * s.H + ih) * s.W + iw];
            if (v > best || std::isnan(v)) {
              best = v;
              best_i = ih * s.W + iw;
            }
          }
        y[(p * OH + oh) * OW + ow] = best;
        idx[(p * OH + oh) * OW + ow] = static_cast<int32_t>(best_i);
      }
}

// dx (planes, H, W) overwritten with dy scattered to idx.
template <typename T>
void max_pool2d_backward(T* dx, const T* dy, const int32_t* idx, const Pool2dShape& s) {
  const int64_t out = s.OH() * s.OW();
  for (int64_t i = 0; i < s.planes * s.H * s.W; ++i) dx[i] = 0;
  for (int64_t p = 0; p < s.planes; ++p)
    for (int64_t o = 0; o < out; ++o) dx[p * s.H * s.W + idx[p * out + o]] += dy[p * out + o];
}

// Average pooling without padding (torch avg_pool2d, padding 0, floor rounding):
// y (planes, OH, OW) = mean of x over each kh x kw window; ph, pw must be 0.
template <typename T>
void avg_pool2d_forward(T* y, const T* x, const Pool2dShape& s) {
  const int64_t OH = s.OH(), OW = s.OW();
  for (int64_t p = 0; p < s.planes; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        T acc = 0;
        for (int64_t i = 0; i < s.kh; ++i)
          for (int64_t j = 0; j < s.kw; ++j) acc += x[(p * s.H + oh * s.sh + i) * s.W + ow * s.sw + j];
        y[(p * OH + oh) * OW + ow] = acc / static_cast<T>(s.kh * s.kw);
      }
}

// dx (planes, H, W) overwritten: each window's dy / (kh kw) added to its elements.
template <typename T>
void avg_pool2d_backward(T* dx, const T* dy, const Pool2dShape& s) {
  const int64_t OH = s.OH(), OW = s.OW();
  for (int64_t i = 0; i < s.planes * s.H * s.W; ++i) dx[i] = 0;
  for (int64_t p = 0; p < s.planes; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow)
        for (int64_t i = 0; i < s.kh; ++i)
          for (int64_t j = 0; j < s.kw; ++j)
            dx[(p * s.H + oh * s.sh + i) * s.W + ow * s.sw + j] +=
                dy[(p * OH + oh) * OW + ow] / static_cast<T>(s.kh * s.kw);
}

}  // namespace perceiver::ref
