// Reference 2-D relative position logits (BoTNet, Srinivas et al. 2021; Bello et al. 2019,
// "Attention Augmented Convolutional Networks"): plain scalar templates, run in double by the
// tests as the oracle for kernels/cpu/relative_logits.
//
// For n in [0, N), query i = (ih, iw) and key j = (jh, jw) of an H x W map (i = ih W + iw):
//   y[n, i, j] = rw[n, i, jw - iw + W - 1] + rh[n, i, jh - ih + H - 1]
// with rw (N, HW, 2W - 1) = q . width_rel and rh (N, HW, 2H - 1) = q . height_rel, the logits of
// each query against every relative offset.
#pragma once

#include <cstdint>

namespace perceiver::ref {

template <typename T>
void relative_logits_forward(T* y, const T* rw, const T* rh, int64_t n, int64_t h, int64_t w) {
  const int64_t hw = h * w, cw = 2 * w - 1, ch = 2 * h - 1;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < hw; ++i)
      for (int64_t j = 0; j < hw; ++j) {
        const int64_t ih = i / w, iw = i % w, jh = j / w, jw = j % w;
        y[(b * hw + i) * hw + j] = rw[(b * hw + i) * cw + jw - iw + w - 1] + rh[(b * hw + i) * ch + jh - ih + h - 1];
      }
}

// drw, drh overwritten: every y element's gradient goes to the two offsets it was read from.
template <typename T>
void relative_logits_backward(T* drw, T* drh, const T* dy, int64_t n, int64_t h, int64_t w) {
  const int64_t hw = h * w, cw = 2 * w - 1, ch = 2 * h - 1;
  for (int64_t k = 0; k < n * hw * cw; ++k) drw[k] = 0;
  for (int64_t k = 0; k < n * hw * ch; ++k) drh[k] = 0;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < hw; ++i)
      for (int64_t j = 0; j < hw; ++j) {
        const int64_t ih = i / w, iw = i % w, jh = j / w, jw = j % w;
        const T g = dy[(b * hw + i) * hw + j];
        drw[(b * hw + i) * cw + jw - iw + w - 1] += g;
        drh[(b * hw + i) * ch + jh - ih + h - 1] += g;
      }
}

}  // namespace perceiver::ref
