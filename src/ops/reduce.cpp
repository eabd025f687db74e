// mean over one axis, its backward, center, standardize and sum_all: validate, allocate, call kernels/cpu/reduce.
// The tensor is viewed as (outer, len, inner) around the reduced axis.
#include "perceiver/ops/reduce.h"

#include "perceiver/core/profiler.h"
#include <cmath>
#include <cstring>
#include <sstream>

#include "kernels/cpu/reduce.h"
#include "ops/validate.h"

namespace perceiver::ops {

using detail::expect_f32;
using detail::expect_shape;

namespace {

struct AxisView {
  int axis;  // normalised to [0, rank)
  int64_t outer, len, inner;
  Shape reduced;  // shape with the axis removed
};

AxisView axis_view(const char* op, const Shape& shape, int axis) {
  const int rank = static_cast<int>(shape.size());
  check(rank >= 1, "[", op, "] x: expected rank >= 1, got shape ", shape_str(shape));
  check(axis >= -rank && axis < rank, "[", op, "] axis: expected in [", -rank, ", ", rank,
        ") for shape ", shape_str(shape), ", got ", axis);
  AxisView v{axis < 0 ? axis + rank : axis, 1, 0, 1, {}};
  for (int i = 0; i < rank; ++i) {
    if (i < v.axis) v.outer *= shape[i];
    if (i > v.axis) v.inner *= shape[i];
    if (i != v.axis) v.reduced.push_back(shape[i]);
  }
  v.len = shape[v.axis];
  check(v.len > 0, "[", op, "] axis ", axis, ": expected a non-empty axis, got shape ",
        shape_str(shape));
  return v;
}

}  // namespace

Tensor mean(const Tensor& x, int axis) {
  profiler::Scope prof("mean");
  expect_f32("mean", "x", x);
  const AxisView v = axis_view("mean", x.shape(), axis);
  Tensor y = Tensor::empty(v.reduced);
  cpu::mean_forward(y.f32(), x.f32(), v.outer, v.len, v.inner);
  return y;
}

Tensor mean_backward(const Tensor& dy, const Shape& input_shape, int axis) {
  profiler::Scope prof("mean_backward");
  expect_f32("mean_backward", "dy", dy);
  const AxisView v = axis_view("mean_backward", input_shape, axis);
  expect_shape("mean_backward", "dy", dy, v.reduced);
  Tensor dx = Tensor::empty(input_shape);
  cpu::mean_backward(dx.f32(), dy.f32(), v.outer, v.len, v.inner);
  return dx;
}

Tensor center(const Tensor& x, int axis) {
  profiler::Scope prof("center");
  expect_f32("center", "x", x);
  const AxisView v = axis_view("center", x.shape(), axis);
  Tensor y = Tensor::empty(x.shape());
  cpu::center(y.f32(), x.f32(), v.outer, v.len, v.inner);
  return y;
}

Standardized standardize(const Tensor& x, int axis, float eps) {
  profiler::Scope prof("standardize");
  expect_f32("standardize", "x", x);
  const AxisView v = axis_view("standardize", x.shape(), axis);
  check(std::isfinite(eps) && eps > 0.0f, "[standardize] eps: expected a finite value > 0, got ", eps);
  Standardized r{Tensor::empty(x.shape()), Tensor::empty(v.reduced)};
  cpu::standardize(r.y.f32(), r.rstd.f32(), x.f32(), v.outer, v.len, v.inner, eps);
  return r;
}

Tensor standardize_backward(const Tensor& dy, const Tensor& y, const Tensor& rstd, int axis) {
  profiler::Scope prof("standardize_backward");
  expect_f32("standardize_backward", "dy", dy);
  expect_f32("standardize_backward", "y", y);
  expect_f32("standardize_backward", "rstd", rstd);
  const AxisView v = axis_view("standardize_backward", y.shape(), axis);
  expect_shape("standardize_backward", "dy", dy, y.shape());
  expect_shape("standardize_backward", "rstd", rstd, v.reduced);
  Tensor dx = Tensor::empty(y.shape());
  cpu::standardize_backward(dx.f32(), dy.f32(), y.f32(), rstd.f32(), v.outer, v.len, v.inner);
  return dx;
}

Tensor sum_all(const Tensor& x) {
  expect_f32("sum_all", "x", x);
  Tensor out = Tensor::empty({});
  cpu::sum_all_forward(out.f32(), x.f32(), x.numel());
  return out;
}

NonFinite count_nonfinite(const Tensor& x) {
  check(x.defined(), "[count_nonfinite] x: expected a tensor, got an undefined one");
  NonFinite r;
  if (x.dtype() == DType::kF32) {
    r.count = cpu::count_nonfinite(x.f32(), x.numel(), &r.first);
    if (r.count) r.first_value = x.f32()[r.first];
  } else if (x.dtype() == DType::kBF16) {
    const uint16_t* p = x.bf16();
    r.count = cpu::count_nonfinite_bf16(p, x.numel(), &r.first);
    if (r.count) {
      const uint32_t bits = static_cast<uint32_t>(p[r.first]) << 16;
      std::memcpy(&r.first_value, &bits, sizeof bits);
    }
  }
  return r;
}

std::string NonFinite::describe() const {
  std::ostringstream os;
  os << count << " non-finite value" << (count == 1 ? "" : "s") << " (first: " << first_value << " at element "
     << first << ")";
  return os.str();
}

}  // namespace perceiver::ops
