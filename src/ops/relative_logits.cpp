// relative_logits and its backward: validate shapes, allocate, call kernels/cpu/relative_logits.
#include "perceiver/ops/relative_logits.h"

#include "kernels/cpu/relative_logits.h"
#include "ops/validate.h"
#include "perceiver/core/profiler.h"

namespace perceiver::ops {
namespace {

void check_map(const char* op, int64_t height, int64_t width) {
  check(height >= 1 && width >= 1 && height <= 4096 && width <= 4096, "[", op,
        "] expected a map of 1 .. 4096 rows and columns, got ", height, " x ", width);
}

}  // namespace

Tensor relative_logits(const Tensor& rw, const Tensor& rh, int64_t height, int64_t width) {
  constexpr const char* op = "relative_logits";
  profiler::Scope prof(op);
  check_map(op, height, width);
  detail::expect_f32(op, "rw", rw);
  detail::expect_f32(op, "rh", rh);
  const int64_t hw = height * width;
  check(rw.rank() == 3 && rw.dim(1) == hw && rw.dim(2) == 2 * width - 1, "[", op, "] rw: expected (n, ", hw,
        ", ", 2 * width - 1, ") for a ", height, " x ", width, " map, got shape ", shape_str(rw.shape()));
  detail::expect_shape(op, "rh", rh, Shape{rw.dim(0), hw, 2 * height - 1});
  Tensor y = Tensor::empty({rw.dim(0), hw, hw});
  cpu::relative_logits_forward(y.f32(), rw.f32(), rh.f32(), rw.dim(0), height, width);
  return y;
}

RelativeLogitsGrads relative_logits_backward(const Tensor& dy, int64_t height, int64_t width) {
  constexpr const char* op = "relative_logits_backward";
  profiler::Scope prof(op);
  check_map(op, height, width);
  detail::expect_f32(op, "dy", dy);
  const int64_t hw = height * width;
  check(dy.rank() == 3 && dy.dim(1) == hw && dy.dim(2) == hw, "[", op, "] dy: expected (n, ", hw, ", ", hw,
        ") for a ", height, " x ", width, " map, got shape ", shape_str(dy.shape()));
  RelativeLogitsGrads g{Tensor::empty({dy.dim(0), hw, 2 * width - 1}), Tensor::empty({dy.dim(0), hw, 2 * height - 1})};
  cpu::relative_logits_backward(g.drw.f32(), g.drh.f32(), dy.f32(), dy.dim(0), height, width);
  return g;
}

}  // namespace perceiver::ops
