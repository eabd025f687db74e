// Fast CPU 2-D convolution, NCHW float32, groups = 1, dilation 1 (torch.nn.functional.conv2d):
//   y[b, co, oh, ow] = bias[co] + sum_{ci, i, j} w[co, ci, i, j] * x[b, ci, oh*sh + i - ph, ow*sw + j - pw]
// with x read as 0 outside the image. Lowered to im2col + cpu::gemm, one GEMM per image or per
// group of images when maps are small; images are split across threads (one column buffer each)
// when the batch allows, else each GEMM uses the threads.
// Raw-pointer kernels; never throw (ops/conv2d.cpp validates).
#pragma once

#include <cstdint>

namespace perceiver::cpu {

// Problem geometry. OH = floor((H + 2 ph - kh) / sh) + 1, OW likewise (computed by the op).
struct Conv2dGeom {
  int64_t B, Cin, H, W;  // input (B, Cin, H, W)
  int64_t Cout, kh, kw;  // weight (Cout, Cin, kh, kw)
  int64_t sh, sw, ph, pw;
  int64_t OH, OW;        // output (B, Cout, OH, OW)
  int64_t K() const { return Cin * kh * kw; }  // GEMM reduction length
  int64_t P() const { return OH * OW; }        // output pixels per image
  // 1x1, stride 1, no padding: the image itself is the column matrix (no im2col).
  bool pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
};

// Scratch the kernels need, in floats (the op allocates it from the caching allocator).
int64_t conv2d_forward_workspace(const Conv2dGeom& g);
int64_t conv2d_backward_workspace(const Conv2dGeom& g);

// col (K, P) for one image, rows `ld` apart (ld >= P: several images side by side):
// col[(ci*kh + i)*kw + j, oh*OW + ow] = x[ci, oh*sh + i - ph, ow*sw + j - pw] (0 in the padding);
// rows [r0, r1) only.
void im2col(float* col, int64_t ld, const float* x, const Conv2dGeom& g, int64_t r0, int64_t r1);
// Adjoint of im2col for one image: dx[ci, ih, iw] += col entries that read it; channels [c0, c1).
void col2im(float* dx, const float* col, int64_t ld, const Conv2dGeom& g, int64_t c0, int64_t c1);

// y (B, Cout, OH, OW); x (B, Cin, H, W); w (Cout, K); bias (Cout) or nullptr.
void conv2d_forward(float* y, const float* x, const float* w, const float* bias,
                    const Conv2dGeom& g, float* workspace);

// dx = col2im(w^T dy_b) per image; dw = sum_b dy_b col_b^T; db = sum_{b, p} dy.
// Any of dx, dw, db may be nullptr (not computed); all computed ones are overwritten.
// dw is reduced from per-chunk partials in chunk order (deterministic for a fixed thread count
// and batch size).
void conv2d_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                     const float* w, const Conv2dGeom& g, float* workspace);

}  // namespace perceiver::cpu
