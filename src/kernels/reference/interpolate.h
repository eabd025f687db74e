// Reference bicubic resampling (torch.nn.functional.interpolate(mode="bicubic"), A = -0.75,
// border-clamped taps): plain scalar templates, run in double by the tests as the oracle for
// kernels/cpu/interpolate. Written straight from the definition, one output element at a time.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace perceiver::ref {

struct ResampleShape {
  int64_t planes, H, W, OH, OW;
  bool align_corners;
};

// Keys' cubic convolution kernel with A = -0.75 (PyTorch's choice):
//   |s| <= 1:      (A + 2)|s|^3 - (A + 3)|s|^2 + 1
//   1 < |s| < 2:   A|s|^3 - 5A|s|^2 + 8A|s| - 4A
template <typename T>
T cubic_kernel(T s) {
  const T A = T(-0.75);
  s = std::fabs(s);
  if (s <= 1) return ((A + 2) * s - (A + 3)) * s * s + 1;
  if (s < 2) return ((A * s - 5 * A) * s + 8 * A) * s - 4 * A;
  return 0;
}

// Source coordinate of output index i along an axis of in -> out samples.
//   align_corners: i * (in - 1) / (out - 1)   (0 when out == 1)
//   otherwise:     (i + 0.5) * in / out - 0.5 (may be negative; no clamping for cubic)
template <typename T>
T source_coord(int64_t i, int64_t in, int64_t out, bool align_corners) {
  if (align_corners) return out > 1 ? T(i) * T(in - 1) / T(out - 1) : T(0);
  return (T(i) + T(0.5)) * T(in) / T(out) - T(0.5);
}

// The 4 taps (clamped indices) and weights of output i: base = floor(src) (at most in - 1),
// t = src - base in [0, 1], taps base - 1 .. base + 2 with weights kernel(t + 1), kernel(t),
// kernel(1 - t), kernel(2 - t).
template <typename T>
void taps(int64_t i, int64_t in, int64_t out, bool align_corners, int64_t idx[4], T w[4]) {
  const T src = source_coord<T>(i, in, out, align_corners);
  const int64_t base = std::min<int64_t>(static_cast<int64_t>(std::floor(src)), in - 1);
  const T t = std::min<T>(std::max<T>(src - T(base), T(0)), T(1));
  for (int k = 0; k < 4; ++k) {
    idx[k] = std::clamp<int64_t>(base - 1 + k, 0, in - 1);
    w[k] = cubic_kernel<T>(t + T(1 - k));
  }
}

// y (planes, OH, OW) = sum_{a, b} wy[a] wx[b] x[plane, iy[a], ix[b]]. Same size copies x.
template <typename T>
void bicubic_forward(T* y, const T* x, const ResampleShape& s) {
  for (int64_t p = 0; p < s.planes; ++p)
    for (int64_t oy = 0; oy < s.OH; ++oy)
      for (int64_t ox = 0; ox < s.OW; ++ox) {
        int64_t iy[4], ix[4];
        T wy[4], wx[4];
        taps<T>(oy, s.H, s.OH, s.align_corners, iy, wy);
        taps<T>(ox, s.W, s.OW, s.align_corners, ix, wx);
        T acc = 0;
        for (int a = 0; a < 4; ++a)
          for (int b = 0; b < 4; ++b) acc += wy[a] * wx[b] * x[(p * s.H + iy[a]) * s.W + ix[b]];
        y[(p * s.OH + oy) * s.OW + ox] = acc;
      }
}

// dx (planes, H, W) overwritten: the transpose of bicubic_forward applied to dy.
template <typename T>
void bicubic_backward(T* dx, const T* dy, const ResampleShape& s) {
  for (int64_t i = 0; i < s.planes * s.H * s.W; ++i) dx[i] = 0;
  for (int64_t p = 0; p < s.planes; ++p)
    for (int64_t oy = 0; oy < s.OH; ++oy)
      for (int64_t ox = 0; ox < s.OW; ++ox) {
        int64_t iy[4], ix[4];
        T wy[4], wx[4];
        taps<T>(oy, s.H, s.OH, s.align_corners, iy, wy);
        taps<T>(ox, s.W, s.OW, s.align_corners, ix, wx);
        const T g = dy[(p * s.OH + oy) * s.OW + ox];
        for (int a = 0; a < 4; ++a)
          for (int b = 0; b < 4; ++b) dx[(p * s.H + iy[a]) * s.W + ix[b]] += wy[a] * wx[b] * g;
      }
}

}  // namespace perceiver::ref
