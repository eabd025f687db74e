// Elementwise ops (add with leading broadcast, sub, mul, scale, in-place updates, sum_to,
// expand_leading, concat_last/split_last): validate, allocate, call kernels/cpu/elementwise.
#include "perceiver/ops/elementwise.h"

#include "perceiver/core/profiler.h"
#include "kernels/cpu/elementwise.h"
#include "ops/validate.h"

namespace perceiver::ops {

using detail::expect_f32;
using detail::expect_min_rank;
using detail::expect_shape;
using detail::is_suffix;

namespace {

void check_same(const char* op, const Tensor& a, const Tensor& b) {
  expect_f32(op, "a", a);
  expect_f32(op, "b", b);
  expect_shape(op, "b", b, a.shape());
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  profiler::Scope prof("add");
  expect_f32("add", "a", a);
  expect_f32("add", "b", b);
  check(is_suffix(b.shape(), a.shape()), "[add] b: expected a shape equal to a trailing suffix of a's ",
        shape_str(a.shape()), ", got ", shape_str(b.shape()));
  Tensor out = Tensor::empty(a.shape());
  const int64_t cols = b.numel();
  cpu::add_forward(out.f32(), a.f32(), b.f32(), cols > 0 ? a.numel() / cols : 0, cols);
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  profiler::Scope prof("sub");
  check_same("sub", a, b);
  Tensor out = Tensor::empty(a.shape());
  cpu::sub_forward(out.f32(), a.f32(), b.f32(), a.numel());
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  profiler::Scope prof("mul");
  check_same("mul", a, b);
  Tensor out = Tensor::empty(a.shape());
  cpu::mul_forward(out.f32(), a.f32(), b.f32(), a.numel());
  return out;
}

Tensor scale(const Tensor& x, float s) {
  profiler::Scope prof("scale");
  expect_f32("scale", "x", x);
  Tensor out = Tensor::empty(x.shape());
  cpu::scale_forward(out.f32(), x.f32(), s, x.numel());
  return out;
}

Tensor log(const Tensor& x, float eps) {
  profiler::Scope prof("log");
  expect_f32("log", "x", x);
  const float* p = x.f32();
  for (int64_t i = 0; i < x.numel(); ++i)
    if (p[i] + eps <= 0.0f)  // NaN passes and propagates (the command boundary reports it)
      throw_error("[log] x + eps must be positive, got ", p[i], " + ", eps, " at element ", i);
  Tensor out = Tensor::empty(x.shape());
  cpu::log_forward(out.f32(), p, eps, x.numel());
  return out;
}

Tensor log_backward(const Tensor& dy, const Tensor& x, float eps) {
  profiler::Scope prof("log_backward");
  expect_f32("log_backward", "dy", dy);
  expect_f32("log_backward", "x", x);
  expect_shape("log_backward", "dy", dy, x.shape());
  Tensor dx = Tensor::empty(x.shape());
  cpu::log_backward(dx.f32(), dy.f32(), x.f32(), eps, x.numel());
  return dx;
}

void add_inplace(Tensor& dst, const Tensor& src) {
  profiler::Scope prof("add_inplace");
  expect_f32("add_inplace", "dst", dst);
  expect_f32("add_inplace", "src", src);
  expect_shape("add_inplace", "src", src, dst.shape());
  cpu::axpy_inplace(dst.f32(), 1.0f, src.f32(), dst.numel());
}

void axpy_inplace(Tensor& dst, float alpha, const Tensor& src) {
  profiler::Scope prof("axpy_inplace");
  expect_f32("axpy_inplace", "dst", dst);
  expect_f32("axpy_inplace", "src", src);
  expect_shape("axpy_inplace", "src", src, dst.shape());
  cpu::axpy_inplace(dst.f32(), alpha, src.f32(), dst.numel());
}

Tensor sum_to(const Tensor& x, const Shape& target) {
  profiler::Scope prof("sum_to");
  expect_f32("sum_to", "x", x);
  check(is_suffix(target, x.shape()), "[sum_to] target: expected a trailing suffix of x's shape ",
        shape_str(x.shape()), ", got ", shape_str(target));
  Tensor out = Tensor::empty(target);
  const int64_t cols = out.numel();
  if (cols > 0) cpu::sum_to_forward(out.f32(), x.f32(), x.numel() / cols, cols);
  return out;
}

Tensor expand_leading(const Tensor& x, int64_t n) {
  profiler::Scope prof("expand_leading");
  expect_f32("expand_leading", "x", x);
  check(n >= 0, "[expand_leading] n: expected >= 0, got ", n);
  Shape shape{n};
  shape.insert(shape.end(), x.shape().begin(), x.shape().end());
  Tensor out = Tensor::empty(shape);
  cpu::expand_leading_forward(out.f32(), x.f32(), n, x.numel());
  return out;
}

Tensor concat_last(const Tensor& a, const Tensor& b) {
  profiler::Scope prof("concat_last");
  expect_f32("concat_last", "a", a);
  expect_f32("concat_last", "b", b);
  expect_min_rank("concat_last", "a", a, 1);
  const Shape lead_a(a.shape().begin(), a.shape().end() - 1);
  const Shape lead_b(b.rank() > 0 ? Shape(b.shape().begin(), b.shape().end() - 1) : Shape{-1});
  check(b.rank() == a.rank() && lead_a == lead_b, "[concat_last] b: expected leading dims ",
        shape_str(lead_a), " (shape ", shape_str(a.shape()), " with any last dim), got shape ",
        shape_str(b.shape()));
  const int64_t c1 = a.dim(-1), c2 = b.dim(-1);
  Shape shape = a.shape();
  shape.back() = c1 + c2;
  Tensor out = Tensor::empty(shape);
  cpu::concat_last_forward(out.f32(), a.f32(), b.f32(), shape_numel(lead_a), c1, c2);
  return out;
}

std::pair<Tensor, Tensor> split_last(const Tensor& x, int64_t c1) {
  profiler::Scope prof("split_last");
  expect_f32("split_last", "x", x);
  expect_min_rank("split_last", "x", x, 1);
  const int64_t c = x.dim(-1);
  check(c1 >= 0 && c1 <= c, "[split_last] c1: expected in [0, ", c, "] for shape ",
        shape_str(x.shape()), ", got ", c1);
  Shape sa = x.shape(), sb = x.shape();
  sa.back() = c1;
  sb.back() = c - c1;
  Tensor a = Tensor::empty(sa), b = Tensor::empty(sb);
  cpu::split_last_forward(a.f32(), b.f32(), x.f32(), shape_numel(Shape(sa.begin(), sa.end() - 1)),
                          c1, c - c1);
  return {a, b};
}

}  // namespace perceiver::ops
