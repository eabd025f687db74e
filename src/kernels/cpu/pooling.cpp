// Max-pooling kernels: one (b, c) plane at a time, planes split across threads; the window is
// clipped to the image so padding never wins (it acts as -inf).
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

void forward_plane(float* y, int32_t* idx, const float* x, const Pool2dGeom& g) {
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const int64_t h0 = std::max<int64_t>(oh * g.sh - g.ph, 0);
    const int64_t h1 = std::min<int64_t>(oh * g.sh - g.ph + g.kh, g.H);
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      const int64_t w0 = std::max<int64_t>(ow * g.sw - g.pw, 0);
      const int64_t w1 = std::min<int64_t>(ow * g.sw - g.pw + g.kw, g.W);
      int64_t best_i = h0 * g.W + w0;
      float best = -std::numeric_limits<float>::infinity();
      for (int64_t ih = h0; ih < h1; ++ih) {
        const float* row = x + ih * g.W;
        for (int64_t iw = w0; iw < w1; ++iw) {
          const float v = row[iw];
          if (v > best || std::isnan(v)) {
            best = v;
            best_i = ih * g.W + iw;
          }
        }
      }
      y[oh * g.OW + ow] = best;
      idx[oh * g.OW + ow] = static_cast<int32_t>(best_i);
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

}  // namespace perceiver::cpu
