// Fast CPU bicubic resampling over planes of NCHW float32 (torch upsample_bicubic2d, A = -0.75,
// border-clamped taps, float arithmetic in torch's order): per-axis taps and weights computed
// once, planes split across threads. Raw-pointer kernels; never throw.
#pragma once

#include <cstdint>

namespace perceiver::cpu {

struct ResampleGeom {
  int64_t planes, H, W;  // planes = B * C
  int64_t OH, OW;
  bool align_corners;
};

// y (planes, OH, OW) from x (planes, H, W): for each output, the x-direction cubic over 4
// columns of each of 4 rows, then the y-direction cubic over those 4 values. Same size copies.
void bicubic_forward(float* y, const float* x, const ResampleGeom& g);

// dx (planes, H, W) overwritten: zeros plus every dy[oy, ox] * wy[j] * wx[i] added at the
// clamped tap (iy[j], ix[i]), in torch's loop order. Same size copies.
void bicubic_backward(float* dx, const float* dy, const ResampleGeom& g);

}  // namespace perceiver::cpu
