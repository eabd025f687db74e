// Relative logits: for a query row i = (ih, iw), key row jh of the output is the run
//   y[i, jh*W + jw] = rw[i, (W-1-iw) + jw] + rh[i, jh - ih + H - 1],   jw = 0 .. W-1,
// a contiguous slice of rw plus one rh value; the backward sums the same runs.
#include "kernels/cpu/relative_logits.h"

#include <algorithm>

#include "perceiver/core/parallel.h"

namespace perceiver::cpu {

void relative_logits_forward(float* y, const float* rw, const float* rh, int64_t n, int64_t h, int64_t w) {
  const int64_t hw = h * w, cw = 2 * w - 1, ch = 2 * h - 1;
  parallel_for(n * hw, std::max<int64_t>(1, 4096 / std::max<int64_t>(hw, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t i = r % hw, ih = i / w, iw = i % w;
      const float* wrow = rw + r * cw + (w - 1 - iw);
      const float* hrow = rh + r * ch + (h - 1 - ih);
      float* yrow = y + r * hw;
      for (int64_t jh = 0; jh < h; ++jh) {
        const float hv = hrow[jh];
        float* yr = yrow + jh * w;
#pragma omp simd
        for (int64_t jw = 0; jw < w; ++jw) yr[jw] = wrow[jw] + hv;
      }
    }
  });
}

void relative_logits_backward(float* drw, float* drh, const float* dy, int64_t n, int64_t h, int64_t w) {
  const int64_t hw = h * w, cw = 2 * w - 1, ch = 2 * h - 1;
  parallel_for(n * hw, std::max<int64_t>(1, 4096 / std::max<int64_t>(hw, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t i = r % hw, ih = i / w, iw = i % w;
      float* dwr = drw + r * cw;
      float* dhr = drh + r * ch;
      std::fill(dwr, dwr + cw, 0.0f);
      std::fill(dhr, dhr + ch, 0.0f);
      float* wrow = dwr + (w - 1 - iw);
      const float* dyrow = dy + r * hw;
      for (int64_t jh = 0; jh < h; ++jh) {
        const float* dyr = dyrow + jh * w;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t jw = 0; jw < w; ++jw) {
          wrow[jw] += dyr[jw];
          sum += dyr[jw];
        }
        dhr[jh - ih + h - 1] = sum;
      }
    }
  });
}

}  // namespace perceiver::cpu
