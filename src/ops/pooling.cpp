// max_pool2d, avg_pool2d and their backwards: validate (torch's rules: kernel, stride > 0, 0 <= pad <=
// kernel / 2, a non-empty output), allocate, call kernels/cpu/pooling.
//   y[b,c,oh,ow] = max over the in-image part of x[b, c, oh*sh - ph + [0,kh), ow*sw - pw + [0,kw)]
#include "perceiver/ops/pooling.h"

#include "perceiver/core/profiler.h"
#include "kernels/cpu/pooling.h"
#include "ops/validate.h"

namespace perceiver::ops {
namespace {

using detail::expect_dtype;
using detail::expect_f32;
using detail::expect_shape;

cpu::Pool2dGeom geometry(const char* op, const Shape& xs, int kh, int kw, int sh, int sw, int ph,
                         int pw) {
  check(xs.size() == 4, "[", op, "] x: expected rank 4 (B, C, H, W), got shape ", shape_str(xs));
  check(kh >= 1 && kw >= 1, "[", op, "] kernel: expected >= 1, got (", kh, ", ", kw, ")");
  check(sh >= 1 && sw >= 1, "[", op, "] stride: expected >= 1, got (", sh, ", ", sw, ")");
  check(ph >= 0 && pw >= 0 && ph <= kh / 2 && pw <= kw / 2, "[", op,
        "] padding: expected 0 <= pad <= kernel / 2 = (", kh / 2, ", ", kw / 2, "), got (", ph,
        ", ", pw, ")");
  cpu::Pool2dGeom g{};
  g.planes = xs[0] * xs[1], g.H = xs[2], g.W = xs[3];
  g.kh = kh, g.kw = kw, g.sh = sh, g.sw = sw, g.ph = ph, g.pw = pw;
  check(g.H + 2 * g.ph >= g.kh && g.W + 2 * g.pw >= g.kw, "[", op,
        "] x: expected padded input (H + 2 pad_h, W + 2 pad_w) >= kernel (", kh, ", ", kw,
        "), got (", g.H + 2 * g.ph, ", ", g.W + 2 * g.pw, ") from x shape ", shape_str(xs));
  check(g.H * g.W <= INT32_MAX, "[", op, "] x: expected H * W <= 2^31 - 1 (int32 indices), got shape ",
        shape_str(xs));
  g.OH = (g.H + 2 * g.ph - g.kh) / g.sh + 1;
  g.OW = (g.W + 2 * g.pw - g.kw) / g.sw + 1;
  return g;
}

}  // namespace

MaxPoolOut max_pool2d(const Tensor& x, int kh, int kw, int sh, int sw, int ph, int pw) {
  profiler::Scope prof("max_pool2d");
  expect_f32("max_pool2d", "x", x);
  const cpu::Pool2dGeom g = geometry("max_pool2d", x.shape(), kh, kw, sh, sw, ph, pw);
  const Shape ys{x.dim(0), x.dim(1), g.OH, g.OW};
  MaxPoolOut out{Tensor::empty(ys), Tensor::empty(ys, DType::kI32)};
  cpu::max_pool2d_forward(out.y.f32(), out.indices.data<int32_t>(), x.f32(), g);
  return out;
}

Tensor max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& input_shape) {
  profiler::Scope prof("max_pool2d_backward");
  constexpr const char* op = "max_pool2d_backward";
  expect_f32(op, "dy", dy);
  expect_dtype(op, "indices", indices, DType::kI32);
  check(input_shape.size() == 4, "[", op, "] input_shape: expected rank 4 (B, C, H, W), got ",
        shape_str(input_shape));
  for (int64_t d : input_shape)
    check(d >= 0, "[", op, "] input_shape: expected non-negative dims, got ", shape_str(input_shape));
  check(dy.rank() == 4 && dy.dim(0) == input_shape[0] && dy.dim(1) == input_shape[1], "[", op,
        "] dy: expected shape (", input_shape[0], ", ", input_shape[1], ", OH, OW), got ",
        shape_str(dy.shape()));
  expect_shape(op, "indices", indices, dy.shape());
  cpu::Pool2dGeom g{};
  g.planes = input_shape[0] * input_shape[1], g.H = input_shape[2], g.W = input_shape[3];
  g.OH = dy.dim(2), g.OW = dy.dim(3);
  const int32_t* ix = indices.data<int32_t>();
  const int64_t plane = g.H * g.W;
  for (int64_t i = 0; i < indices.numel(); ++i)
    check(ix[i] >= 0 && ix[i] < plane, "[", op, "] indices: expected values in [0, H * W = ", plane,
          "), got ", ix[i], " at ", i);
  Tensor dx = Tensor::empty(input_shape);
  cpu::max_pool2d_backward(dx.f32(), dy.f32(), ix, g);
  return dx;
}

Tensor avg_pool2d(const Tensor& x, int kh, int kw, int sh, int sw) {
  profiler::Scope prof("avg_pool2d");
  expect_f32("avg_pool2d", "x", x);
  const cpu::Pool2dGeom g = geometry("avg_pool2d", x.shape(), kh, kw, sh, sw, 0, 0);
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), g.OH, g.OW});
  cpu::avg_pool2d_forward(y.f32(), x.f32(), g);
  return y;
}

Tensor avg_pool2d_backward(const Tensor& dy, const Shape& input_shape, int kh, int kw, int sh, int sw) {
  profiler::Scope prof("avg_pool2d_backward");
  constexpr const char* op = "avg_pool2d_backward";
  expect_f32(op, "dy", dy);
  for (int64_t d : input_shape)
    check(d >= 0, "[", op, "] input_shape: expected non-negative dims, got ", shape_str(input_shape));
  const cpu::Pool2dGeom g = geometry(op, input_shape, kh, kw, sh, sw, 0, 0);
  expect_shape(op, "dy", dy, Shape{input_shape[0], input_shape[1], g.OH, g.OW});
  Tensor dx = Tensor::empty(input_shape);
  cpu::avg_pool2d_backward(dx.f32(), dy.f32(), g);
  return dx;
}

}  // namespace perceiver::ops
