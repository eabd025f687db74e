// Bicubic resampling kernels. Coordinates and weights follow ATen's UpSample.h helpers in float:
//   scale = in / out (align_corners: (in - 1) / (out - 1)), src = scale * (i + 0.5) - 0.5
//   (align_corners: scale * i), base = min(floor(src), in - 1), t = clamp(src - base, 0, 1),
//   weights {c2(t + 1), c1(t), c1(1 - t), c2(2 - t)} with Keys' cubic (A = -0.75),
//   taps clamp(base - 1 + k, 0, in - 1).
#include "kernels/cpu/interpolate.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "perceiver/core/parallel.h"

namespace perceiver::cpu {
namespace {

constexpr float kA = -0.75f;
constexpr int64_t kGrainElems = 1 << 14;  // output elements per thread before splitting pays off

// |s| <= 1 branch and 1 < |s| < 2 branch of the cubic convolution kernel (ATen names).
float cubic_convolution1(float x) { return ((kA + 2) * x - (kA + 3)) * x * x + 1; }
float cubic_convolution2(float x) { return ((kA * x - 5 * kA) * x + 8 * kA) * x - 4 * kA; }

struct AxisTaps {
  std::vector<int64_t> idx;  // (out, 4) clamped input indices
  std::vector<float> w;      // (out, 4) weights
};

AxisTaps axis_taps(int64_t in, int64_t out, bool align_corners) {
  AxisTaps a;
  a.idx.resize(static_cast<size_t>(out) * 4);
  a.w.resize(static_cast<size_t>(out) * 4);
  const float scale = align_corners ? (out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.0f)
                                    : static_cast<float>(in) / static_cast<float>(out);
  for (int64_t i = 0; i < out; ++i) {
    const float src = align_corners ? scale * static_cast<float>(i)
                                    : scale * (static_cast<float>(i) + 0.5f) - 0.5f;
    const int64_t base = std::min<int64_t>(static_cast<int64_t>(std::floor(src)), in - 1);
    const float t = std::min(std::max(src - static_cast<float>(base), 0.0f), 1.0f);
    const float t2 = 1.0f - t;
    float* w = &a.w[i * 4];
    w[0] = cubic_convolution2(t + 1.0f);
    w[1] = cubic_convolution1(t);
    w[2] = cubic_convolution1(t2);
    w[3] = cubic_convolution2(t2 + 1.0f);
    for (int k = 0; k < 4; ++k) a.idx[i * 4 + k] = std::clamp<int64_t>(base - 1 + k, 0, in - 1);
  }
  return a;
}

int64_t plane_grain(const ResampleGeom& g) {
  return std::max<int64_t>(1, kGrainElems / std::max<int64_t>(g.OH * g.OW, 1));
}

bool same_size(const ResampleGeom& g) { return g.H == g.OH && g.W == g.OW; }

}  // namespace

void bicubic_forward(float* y, const float* x, const ResampleGeom& g) {
  if (same_size(g)) {
    std::memcpy(y, x, sizeof(float) * static_cast<size_t>(g.planes * g.H * g.W));
    return;
  }
  const AxisTaps ty = axis_taps(g.H, g.OH, g.align_corners), tx = axis_taps(g.W, g.OW, g.align_corners);
  const int64_t in = g.H * g.W, out = g.OH * g.OW;
  parallel_for(g.planes, plane_grain(g), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* xp = x + p * in;
      float* yp = y + p * out;
      for (int64_t oy = 0; oy < g.OH; ++oy) {
        const int64_t* iy = &ty.idx[oy * 4];
        const float* wy = &ty.w[oy * 4];
        for (int64_t ox = 0; ox < g.OW; ++ox) {
          const int64_t* ix = &tx.idx[ox * 4];
          const float* wx = &tx.w[ox * 4];
          float rows[4];
          for (int j = 0; j < 4; ++j) {  // x-direction cubic on row iy[j]
            const float* r = xp + iy[j] * g.W;
            rows[j] = r[ix[0]] * wx[0] + r[ix[1]] * wx[1] + r[ix[2]] * wx[2] + r[ix[3]] * wx[3];
          }
          yp[oy * g.OW + ox] = rows[0] * wy[0] + rows[1] * wy[1] + rows[2] * wy[2] + rows[3] * wy[3];
        }
      }
    }
  });
}

void bicubic_backward(float* dx, const float* dy, const ResampleGeom& g) {
  if (same_size(g)) {
    std::memcpy(dx, dy, sizeof(float) * static_cast<size_t>(g.planes * g.H * g.W));
    return;
  }
  const AxisTaps ty = axis_taps(g.H, g.OH, g.align_corners), tx = axis_taps(g.W, g.OW, g.align_corners);
  const int64_t in = g.H * g.W, out = g.OH * g.OW;
  parallel_for(g.planes, plane_grain(g), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      float* dxp = dx + p * in;
      const float* dyp = dy + p * out;
      std::fill(dxp, dxp + in, 0.0f);
      for (int64_t oy = 0; oy < g.OH; ++oy) {
        const int64_t* iy = &ty.idx[oy * 4];
        const float* wy = &ty.w[oy * 4];
        for (int64_t ox = 0; ox < g.OW; ++ox) {
          const int64_t* ix = &tx.idx[ox * 4];
          const float* wx = &tx.w[ox * 4];
          const float v = dyp[oy * g.OW + ox];
          for (int i = 0; i < 4; ++i)  // torch order: x tap outer, y tap inner
            for (int j = 0; j < 4; ++j) dxp[iy[j] * g.W + ix[i]] += v * wy[j] * wx[i];
        }
      }
    }
  });
}

}  // namespace perceiver::cpu
