// Reference 2-D convolution (torch.nn.functional.conv2d, NCHW, groups 1, dilation 1, zero
// padding): direct loops, run in double by the tests as the oracle for kernels/cpu/conv2d.
#pragma once

#include <cstdint>

namespace perceiver::ref {

struct Conv2dShape {
  int64_t B, Cin, H, W, Cout, kh, kw, sh, sw, ph, pw;
  int64_t OH() const { return (H + 2 * ph - kh) / sh + 1; }
  int64_t OW() const { return (W + 2 * pw - kw) / sw + 1; }
};

// y[b,co,oh,ow] = bias[co] + sum_{ci,i,j} w[co,ci,i,j] x[b,ci,oh*sh+i-ph,ow*sw+j-pw]; bias may be null.
template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const T* bias, const Conv2dShape& s) {
  const int64_t OH = s.OH(), OW = s.OW();
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t co = 0; co < s.Cout; ++co)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          T acc = bias ? bias[co] : T(0);
          for (int64_t ci = 0; ci < s.Cin; ++ci)
            for (int64_t i = 0; i < s.kh; ++i)
              for (int64_t j = 0; j < s.kw; ++j) {
                const int64_t ih = oh * s.sh + i - s.ph, iw = ow * s.sw + j - s.pw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                acc += w[((co * s.Cin + ci) * s.kh + i) * s.kw + j] *
                       x[((b * s.Cin + ci) * s.H + ih) * s.W + iw];
              }
          y[((b * s.Cout + co) * OH + oh) * OW + ow] = acc;
        }
}

// dx, dw, db (overwritten): the adjoints of conv2d_forward for cotangent dy (B, Cout, OH, OW).
template <typename T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const Conv2dShape& s) {
  const int64_t OH = s.OH(), OW = s.OW();
  for (int64_t i = 0; i < s.B * s.Cin * s.H * s.W; ++i) dx[i] = 0;
  for (int64_t i = 0; i < s.Cout * s.Cin * s.kh * s.kw; ++i) dw[i] = 0;
  for (int64_t i = 0; i < s.Cout; ++i) db[i] = 0;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t co = 0; co < s.Cout; ++co)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const T g = dy[((b * s.Cout + co) * OH + oh) * OW + ow];
          db[co] += g;
          for (int64_t ci = 0; ci < s.Cin; ++ci)
            for (int64_t i = 0; i < s.kh; ++i)
              for (int64_t j = 0; j < s.kw; ++j) {
                const int64_t ih = oh * s.sh + i - s.ph, iw = ow * s.sw + j - s.pw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                const int64_t wi = ((co * s.Cin + ci) * s.kh + i) * s.kw + j;
                const int64_t xi = ((b * s.Cin + ci) * s.H + ih) * s.W + iw;
                dw[wi] += g * x[xi];
                dx[xi] += g * w[wi];
              }
        }
}

}  // namespace perceiver::ref
