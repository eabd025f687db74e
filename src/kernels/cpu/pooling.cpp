// Max-pooling kernels: one (b, c) plane at a time, planes split across threads, output rows
// vectorised over ow; windows are clipped to the image so padding never wins (it acts as -inf).
#include "kernels/cpu/pooling.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "perceiver/core/parallel.h"

namespace perceiver::cpu {
namespace {

constexpr int64_t kGrainElems = 1 << 15;  // elements per thread before splitting pays off

int64_t plane_grain(const Pool2dGeom& g) {
  return std::max<int64_t>(1, kGrainElems / std::max<int64_t>(g.H * g.W, 1));
}

// One output row at a time, vectorised over ow: each in-window input position (ih, j) is
// visited in torch's row-major window order and compared against all outputs at once, so ties
// keep the first maximum and NaN wins exactly as in `v > max || isnan(v)`.
// Outputs whose column ow*sw + j - pw lies inside the image: [lo, hi).
void column_range(const Pool2dGeom& g, int64_t j, int64_t* lo, int64_t* hi) {
  const int64_t first = g.pw - j, last = g.W - 1 + g.pw - j;
  *hi = last < 0 ? 0 : std::min<int64_t>(g.OW, last / g.sw + 1);
  *lo = std::min<int64_t>(first <= 0 ? 0 : (first + g.sw - 1) / g.sw, *hi);
}

void forward_plane(float* y, int32_t* idx, const float* x, const Pool2dGeom& g) {
  // the column ranges are the same for every row: computed once (two divisions each) for
  // windows up to kCached wide
  constexpr int64_t kCached = 16;
  int64_t los[kCached], his[kCached];
  for (int64_t j = 0; j < std::min(g.kw, kCached); ++j) column_range(g, j, &los[j], &his[j]);
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const int64_t h0 = std::max<int64_t>(oh * g.sh - g.ph, 0);
    const int64_t h1 = std::min<int64_t>(oh * g.sh - g.ph + g.kh, g.H);
    float* yr = y + oh * g.OW;
    int32_t* ir = idx + oh * g.OW;
    for (int64_t ow = 0; ow < g.OW; ++ow) {  // max = -inf at the window's first in-image element
      yr[ow] = -std::numeric_limits<float>::infinity();
      ir[ow] = static_cast<int32_t>(h0 * g.W + std::max<int64_t>(ow * g.sw - g.pw, 0));
    }
    for (int64_t ih = h0; ih < h1; ++ih) {
      for (int64_t j = 0; j < g.kw; ++j) {
        int64_t lo, hi;
        if (j < kCached) {
          lo = los[j];
          hi = his[j];
        } else {
          column_range(g, j, &lo, &hi);
        }
        const int64_t base = ih * g.W + j - g.pw;  // input index of ow = 0
        const float* xr = x + base;
        const int64_t sw = g.sw;
        auto step = [&](int64_t ow) {
          const float v = xr[ow * sw];
          const bool take = (v > yr[ow]) | (v != v);
          yr[ow] = take ? v : yr[ow];
          ir[ow] = take ? static_cast<int32_t>(base + ow * sw) : ir[ow];
        };
        if (hi - lo >= 16) {
#pragma omp simd
          for (int64_t ow = lo; ow < hi; ++ow) step(ow);
        } else {  // a short row (small maps): plain code beats a masked strided gather
          for (int64_t ow = lo; ow < hi; ++ow) step(ow);
        }
      }
    }
  }
}

}  // namespace

void max_pool2d_forward(float* y, int32_t* indices, const float* x, const Pool2dGeom& g) {
  const int64_t in = g.H * g.W, out = g.OH * g.OW;
  parallel_for(g.planes, plane_grain(g), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) forward_plane(y + p * out, indices + p * out, x + p * in, g);
  });
}

void max_pool2d_backward(float* dx, const float* dy, const int32_t* indices, const Pool2dGeom& g) {
  const int64_t in = g.H * g.W, out = g.OH * g.OW;
  parallel_for(g.planes, plane_grain(g), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      float* d = dx + p * in;
      std::fill(d, d + in, 0.0f);
      const float* gy = dy + p * out;
      const int32_t* ix = indices + p * out;
      for (int64_t o = 0; o < out; ++o) d[ix[o]] += gy[o];
    }
  });
}

void avg_pool2d_forward(float* y, const float* x, const Pool2dGeom& g) {
  const int64_t in = g.H * g.W, out = g.OH * g.OW;
  const float inv = 1.0f / static_cast<float>(g.kh * g.kw);
  parallel_for(g.planes, plane_grain(g), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* xp = x + p * in;
      float* yp = y + p * out;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        float* yr = yp + oh * g.OW;
        std::fill(yr, yr + g.OW, 0.0f);
        for (int64_t i = 0; i < g.kh; ++i) {
          const float* xr = xp + (oh * g.sh + i) * g.W;
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t sw = g.sw;
#pragma omp simd
            for (int64_t ow = 0; ow < g.OW; ++ow) yr[ow] += xr[ow * sw + j];
          }
        }
#pragma omp simd
        for (int64_t ow = 0; ow < g.OW; ++ow) yr[ow] *= inv;
      }
    }
  });
}

void avg_pool2d_backward(float* dx, const float* dy, const Pool2dGeom& g) {
  const int64_t in = g.H * g.W, out = g.OH * g.OW;
  const float inv = 1.0f / static_cast<float>(g.kh * g.kw);
  parallel_for(g.planes, plane_grain(g), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      float* d = dx + p * in;
      std::fill(d, d + in, 0.0f);
      const float* gy = dy + p * out;
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t i = 0; i < g.kh; ++i) {
          float* dr = d + (oh * g.sh + i) * g.W;
          for (int64_t j = 0; j < g.kw; ++j)
            for (int64_t ow = 0; ow < g.OW; ++ow) dr[ow * g.sw + j] += gy[oh * g.OW + ow] * inv;
        }
    }
  });
}

}  // namespace perceiver::cpu
