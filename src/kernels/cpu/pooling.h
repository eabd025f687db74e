// Fast CPU 2-D max pooling over planes of NCHW float32 (torch max_pool2d_with_indices, dilation
// 1) and average pooling without padding: planes split across threads. Raw-pointer kernels; never throw.
#pragma once

#include <cstdint>

namespace perceiver::cpu {

struct Pool2dGeom {
  int64_t planes, H, W;  // planes = B * C
  int64_t kh, kw, sh, sw, ph, pw;
  int64_t OH, OW;
};

// y, indices (planes, OH, OW); x (planes, H, W). indices hold ih * W + iw within the plane.
// Window = the in-image part of [oh*sh - ph, +kh) x [ow*sw - pw, +kw); max starts at -inf with
// the window's first in-image index; a value replaces it when `v > max || isnan(v)`.
void max_pool2d_forward(float* y, int32_t* indices, const float* x, const Pool2dGeom& g);

// dx (planes, H, W) overwritten: zeros plus dy scattered to the saved indices.
void max_pool2d_backward(float* dx, const float* dy, const int32_t* indices, const Pool2dGeom& g);

// Average pooling, no padding (g.ph = g.pw = 0): y (planes, OH, OW) = window means of x.
void avg_pool2d_forward(float* y, const float* x, const Pool2dGeom& g);

// dx (planes, H, W) overwritten: zeros plus dy / (kh kw) spread over each window.
void avg_pool2d_backward(float* dx, const float* dy, const Pool2dGeom& g);

}  // namespace perceiver::cpu
