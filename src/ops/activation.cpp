// gelu, relu, softmax and their backward ops: validate, allocate, call kernels/cpu/activation.
#include "perceiver/ops/activation.h"

#include "perceiver/core/profiler.h"
#include "kernels/cpu/activation.h"
#include "ops/validate.h"

namespace perceiver::ops {

using detail::expect_f32;
using detail::expect_min_rank;
using detail::expect_shape;

namespace {

// Checks dy and x (float32, same shape) for an elementwise backward.
void check_backward(const char* op, const Tensor& dy, const char* xname, const Tensor& x) {
  expect_f32(op, "dy", dy);
  expect_f32(op, xname, x);
  expect_shape(op, "dy", dy, x.shape());
}

}  // namespace

Tensor gelu(const Tensor& x) {
  profiler::Scope prof("gelu");
  expect_f32("gelu", "x", x);
  Tensor y = Tensor::empty(x.shape());
  cpu::gelu_forward(y.f32(), x.f32(), x.numel());
  return y;
}

GeluOut gelu_with_grad(const Tensor& x) {
  profiler::Scope prof("gelu");
  expect_f32("gelu", "x", x);
  GeluOut out;
  out.y = Tensor::empty(x.shape());
  out.grad = Tensor::empty(x.shape());
  cpu::gelu_forward_with_grad(out.y.f32(), out.grad.f32(), x.f32(), x.numel());
  return out;
}

Tensor gelu_backward(const Tensor& dy, const Tensor& x) {
  profiler::Scope prof("gelu_backward");
  check_backward("gelu_backward", dy, "x", x);
  Tensor dx = Tensor::empty(x.shape());
  cpu::gelu_backward(dx.f32(), dy.f32(), x.f32(), x.numel());
  return dx;
}

Tensor relu(const Tensor& x) {
  profiler::Scope prof("relu");
  expect_f32("relu", "x", x);
  Tensor y = Tensor::empty(x.shape());
  cpu::relu_forward(y.f32(), x.f32(), x.numel());
  return y;
}

Tensor relu_backward(const Tensor& dy, const Tensor& x) {
  profiler::Scope prof("relu_backward");
  check_backward("relu_backward", dy, "x", x);
  Tensor dx = Tensor::empty(x.shape());
  cpu::relu_backward(dx.f32(), dy.f32(), x.f32(), x.numel());
  return dx;
}

Tensor softmax(const Tensor& x) {
  profiler::Scope prof("softmax");
  expect_f32("softmax", "x", x);
  expect_min_rank("softmax", "x", x, 1);
  const int64_t C = x.dim(-1);
  check(C > 0, "[softmax] x: expected a non-empty last dimension, got shape ", shape_str(x.shape()));
  Tensor y = Tensor::empty(x.shape());
  cpu::softmax_forward(y.f32(), x.f32(), x.numel() / C, C);
  return y;
}

Tensor softmax_backward(const Tensor& dy, const Tensor& y) {
  profiler::Scope prof("softmax_backward");
  check_backward("softmax_backward", dy, "y", y);
  expect_min_rank("softmax_backward", "y", y, 1);
  const int64_t C = y.dim(-1);
  Tensor dx = Tensor::empty(y.shape());
  if (C > 0) cpu::softmax_backward(dx.f32(), dy.f32(), y.f32(), y.numel() / C, C);
  return dx;
}

}  // namespace perceiver::ops
