// interpolate_bicubic and its backward: validate (rank 4, positive sizes), allocate, call
// kernels/cpu/interpolate.
#include "perceiver/ops/interpolate.h"

#include "perceiver/core/profiler.h"
#include "kernels/cpu/interpolate.h"
#include "ops/validate.h"

namespace perceiver::ops {
namespace {

cpu::ResampleGeom geometry(const char* op, const char* name, const Shape& in, int64_t out_h,
                           int64_t out_w, bool align_corners) {
  check(in.size() == 4, "[", op, "] ", name, ": expected rank 4 (B, C, H, W), got shape ", shape_str(in));
  check(in[0] >= 0 && in[1] >= 0 && in[2] >= 1 && in[3] >= 1, "[", op, "] ", name,
        ": expected B, C >= 0 and H, W >= 1, got shape ", shape_str(in));
  check(out_h >= 1 && out_w >= 1, "[", op, "] output size: expected (OH, OW) >= 1, got (", out_h,
        ", ", out_w, ")");
  cpu::ResampleGeom g{};
  g.planes = in[0] * in[1], g.H = in[2], g.W = in[3];
  g.OH = out_h, g.OW = out_w;
  g.align_corners = align_corners;
  return g;
}

}  // namespace

Tensor interpolate_bicubic(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners) {
  profiler::Scope prof("interpolate_bicubic");
  detail::expect_f32("interpolate_bicubic", "x", x);
  const cpu::ResampleGeom g = geometry("interpolate_bicubic", "x", x.shape(), out_h, out_w, align_corners);
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), out_h, out_w});
  cpu::bicubic_forward(y.f32(), x.f32(), g);
  return y;
}

Tensor interpolate_bicubic_backward(const Tensor& dy, const Shape& input_shape, bool align_corners) {
  profiler::Scope prof("interpolate_bicubic_backward");
  constexpr const char* op = "interpolate_bicubic_backward";
  detail::expect_f32(op, "dy", dy);
  check(dy.rank() == 4, "[", op, "] dy: expected rank 4 (B, C, OH, OW), got shape ", shape_str(dy.shape()));
  const cpu::ResampleGeom g = geometry(op, "input_shape", input_shape, dy.dim(2), dy.dim(3), align_corners);
  detail::expect_shape(op, "dy", dy, {input_shape[0], input_shape[1], g.OH, g.OW});
  Tensor dx = Tensor::empty(input_shape);
  cpu::bicubic_backward(dx.f32(), dy.f32(), g);
  return dx;
}

}  // namespace perceiver::ops
