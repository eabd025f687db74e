// conv2d and conv2d_backward: validate, allocate (output and im2col workspace from the caching
// allocator), call kernels/cpu/conv2d. torch.nn.functional.conv2d, groups 1, dilation 1:
//   y[b,co,oh,ow] = b[co] + sum_{ci,i,j} w[co,ci,i,j] x[b,ci,oh*sh+i-ph,ow*sw+j-pw]  (0 outside).
#include "perceiver/ops/conv2d.h"

#include "perceiver/core/profiler.h"
#include "kernels/cpu/conv2d.h"
#include "ops/validate.h"

namespace perceiver::ops {
namespace {

using detail::expect_f32;
using detail::expect_shape;

// Validates x, w and the hyper-parameters of one conv2d call and returns its geometry.
cpu::Conv2dGeom geometry(const char* op, const Tensor& x, const Tensor& w, int sh, int sw, int ph,
                         int pw) {
  expect_f32(op, "x", x);
  expect_f32(op, "w", w);
  check(x.rank() == 4, "[", op, "] x: expected rank 4 (B, Cin, H, W), got shape ", shape_str(x.shape()));
  check(w.rank() == 4, "[", op, "] w: expected rank 4 (Cout, Cin, kh, kw), got shape ",
        shape_str(w.shape()));
  check(w.dim(0) > 0 && w.dim(1) > 0 && w.dim(2) > 0 && w.dim(3) > 0, "[", op,
        "] w: expected non-empty (Cout, Cin, kh, kw), got shape ", shape_str(w.shape()));
  check(x.dim(1) == w.dim(1), "[", op, "] x: expected Cin = ", w.dim(1), " channels (w shape ",
        shape_str(w.shape()), "), got x shape ", shape_str(x.shape()));
  check(sh >= 1 && sw >= 1, "[", op, "] stride: expected >= 1, got (", sh, ", ", sw, ")");
  check(ph >= 0 && pw >= 0, "[", op, "] padding: expected >= 0, got (", ph, ", ", pw, ")");
  cpu::Conv2dGeom g{};
  g.B = x.dim(0), g.Cin = x.dim(1), g.H = x.dim(2), g.W = x.dim(3);
  g.Cout = w.dim(0), g.kh = w.dim(2), g.kw = w.dim(3);
  g.sh = sh, g.sw = sw, g.ph = ph, g.pw = pw;
  check(g.H + 2 * g.ph >= g.kh && g.W + 2 * g.pw >= g.kw, "[", op,
        "] x: expected padded input (H + 2 pad_h, W + 2 pad_w) >= kernel (", g.kh, ", ", g.kw,
        "), got (", g.H + 2 * g.ph, ", ", g.W + 2 * g.pw, ") from x shape ", shape_str(x.shape()),
        " and padding (", ph, ", ", pw, ")");
  g.OH = (g.H + 2 * g.ph - g.kh) / g.sh + 1;
  g.OW = (g.W + 2 * g.pw - g.kw) / g.sw + 1;
  return g;
}

Shape out_shape(const cpu::Conv2dGeom& g) { return {g.B, g.Cout, g.OH, g.OW}; }

// Scratch from the caching allocator (float32), or an undefined tensor when none is needed.
Tensor workspace(int64_t floats) { return floats > 0 ? Tensor::empty({floats}) : Tensor(); }
float* ptr(Tensor& t) { return t.defined() ? t.f32() : nullptr; }

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride_h, int stride_w,
              int pad_h, int pad_w) {
  profiler::Scope prof("conv2d");
  const cpu::Conv2dGeom g = geometry("conv2d", x, w, stride_h, stride_w, pad_h, pad_w);
  if (b.defined()) {
    expect_f32("conv2d", "b", b);
    expect_shape("conv2d", "b", b, {g.Cout});
  }
  Tensor y = Tensor::empty(out_shape(g));
  Tensor ws = workspace(cpu::conv2d_forward_workspace(g));
  cpu::conv2d_forward(y.f32(), x.f32(), w.f32(), b.defined() ? b.f32() : nullptr, g, ptr(ws));
  return y;
}

Conv2dGrads conv2d_backward(const Tensor& dy, const Tensor& x, const Tensor& w, int stride_h,
                            int stride_w, int pad_h, int pad_w, bool need_dx, bool need_dw,
                            bool need_db) {
  profiler::Scope prof("conv2d_backward");
  constexpr const char* op = "conv2d_backward";
  const cpu::Conv2dGeom g = geometry(op, x, w, stride_h, stride_w, pad_h, pad_w);
  expect_f32(op, "dy", dy);
  expect_shape(op, "dy", dy, out_shape(g));
  Conv2dGrads grads;
  if (need_dx) grads.dx = Tensor::empty(x.shape());
  if (need_dw) grads.dw = Tensor::empty(w.shape());
  if (need_db) grads.db = Tensor::empty({g.Cout});
  if (!need_dx && !need_dw && !need_db) return grads;
  Tensor ws = workspace(need_dx || need_dw ? cpu::conv2d_backward_workspace(g) : 0);
  cpu::conv2d_backward(ptr(grads.dx), ptr(grads.dw), ptr(grads.db), dy.f32(), x.f32(), w.f32(), g,
                       ptr(ws));
  return grads;
}

}  // namespace perceiver::ops
