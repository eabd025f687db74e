// Token-axis ops: validate, allocate, call kernels/cpu/tokens.
#include "perceiver/ops/tokens.h"

#include "perceiver/core/profiler.h"
#include "kernels/cpu/tokens.h"
#include "ops/validate.h"

namespace perceiver::ops {
namespace {

// x viewed as (outer = dim0, tokens = dim1, inner = product of the rest).
int64_t inner_size(const Shape& s) {
  int64_t n = 1;
  for (size_t i = 2; i < s.size(); ++i) n *= s[i];
  return n;
}

// A float32 (B, T, ...) tensor.
void expect_tokens(const char* op, const char* name, const Tensor& x) {
  detail::expect_f32(op, name, x);
  detail::expect_min_rank(op, name, x, 2);
}

Shape with_tokens(Shape s, int64_t t) {
  s[1] = t;
  return s;
}

}  // namespace

Tensor concat_tokens(const std::vector<Tensor>& xs) {
  profiler::Scope prof("concat_tokens");
  check(!xs.empty(), "[concat_tokens] needs at least one tensor");
  int64_t total = 0;
  for (const Tensor& x : xs) {
    expect_tokens("concat_tokens", "every input", x);
    check(with_tokens(x.shape(), 0) == with_tokens(xs[0].shape(), 0),
          "[concat_tokens] expected shapes that differ only in axis 1, got ", shape_str(xs[0].shape()),
          " and ", shape_str(x.shape()));
    total += x.dim(1);
  }
  if (xs.size() == 1) return xs[0];
  Tensor y = Tensor::empty(with_tokens(xs[0].shape(), total));
  const int64_t outer = xs[0].dim(0), inner = inner_size(xs[0].shape());
  int64_t start = 0;
  for (const Tensor& x : xs) {
    cpu::copy_tokens(y.f32(), total, start, x.f32(), x.dim(1), 0, x.dim(1), outer, inner);
    start += x.dim(1);
  }
  return y;
}

Tensor slice_tokens(const Tensor& x, int64_t start, int64_t len) {
  profiler::Scope prof("slice_tokens");
  expect_tokens("slice_tokens", "x", x);
  check(start >= 0 && len >= 1 && start + len <= x.dim(1), "[slice_tokens] rows [", start, ", ",
        start + len, ") are outside axis 1 of ", shape_str(x.shape()));
  Tensor y = Tensor::empty(with_tokens(x.shape(), len));
  cpu::copy_tokens(y.f32(), len, 0, x.f32(), x.dim(1), start, len, x.dim(0), inner_size(x.shape()));
  return y;
}

Tensor slice_tokens_backward(const Tensor& dy, const Shape& x_shape, int64_t start) {
  profiler::Scope prof("slice_tokens_backward");
  expect_tokens("slice_tokens_backward", "dy", dy);
  check(x_shape.size() >= 2 && dy.shape() == with_tokens(x_shape, dy.dim(1)) && start >= 0 &&
            start + dy.dim(1) <= x_shape[1],
        "[slice_tokens_backward] dy ", shape_str(dy.shape()), " at row ", start, " does not fit x ",
        shape_str(x_shape));
  Tensor dx = Tensor::zeros(x_shape);
  cpu::copy_tokens(dx.f32(), x_shape[1], start, dy.f32(), dy.dim(1), 0, dy.dim(1), x_shape[0],
                   inner_size(x_shape));
  return dx;
}

Tensor gather_tokens(const Tensor& x, const std::vector<int64_t>& idx) {
  profiler::Scope prof("gather_tokens");
  expect_tokens("gather_tokens", "x", x);
  check(!idx.empty(), "[gather_tokens] needs at least one index");
  for (int64_t i : idx)
    check(i >= 0 && i < x.dim(1), "[gather_tokens] index ", i, " is outside [0, ", x.dim(1), ")");
  const int64_t n = static_cast<int64_t>(idx.size());
  Tensor y = Tensor::empty(with_tokens(x.shape(), n));
  cpu::gather_tokens_forward(y.f32(), x.f32(), idx.data(), n, x.dim(1), x.dim(0), inner_size(x.shape()));
  return y;
}

Tensor gather_tokens_backward(const Tensor& dy, const Shape& x_shape, const std::vector<int64_t>& idx) {
  profiler::Scope prof("gather_tokens_backward");
  expect_tokens("gather_tokens_backward", "dy", dy);
  const int64_t n = static_cast<int64_t>(idx.size());
  check(x_shape.size() >= 2 && dy.shape() == with_tokens(x_shape, n),
        "[gather_tokens_backward] dy must be ", shape_str(with_tokens(x_shape, n)), ", got ",
        shape_str(dy.shape()));
  for (int64_t i : idx)
    check(i >= 0 && i < x_shape[1], "[gather_tokens_backward] index ", i, " is outside [0, ", x_shape[1], ")");
  Tensor dx = Tensor::zeros(x_shape);
  cpu::gather_tokens_backward(dx.f32(), dy.f32(), idx.data(), n, x_shape[1], x_shape[0], inner_size(x_shape));
  return dx;
}

}  // namespace perceiver::ops
