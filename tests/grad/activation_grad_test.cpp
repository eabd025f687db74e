// gelu_backward, relu_backward and softmax_backward against central finite differences of the
// double reference forward: f(x) = sum_i w_i ref_forward(x)_i.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/reference/activation.h"
#include "ops/op_test_util.h"
#include "perceiver/ops/activation.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::fd_grad;
using testing::randn;
using testing::to_double;

class ActivationGrad : public ::testing::TestWithParam<Shape> {};

TEST_P(ActivationGrad, Gelu) {
  const Shape shape = GetParam();
  Tensor x = randn(shape, 41, 2.5f), w = randn(shape, 42);
  const auto num = fd_grad(
      [](const std::vector<double>& v) {
        std::vector<double> y(v.size());
        ref::gelu_forward(y.data(), v.data(), static_cast<int64_t>(v.size()));
        return y;
      },
      to_double(x), to_double(w));
  EXPECT_TRUE(all_close(ops::gelu_backward(w, x), num, 2 * f32_tol(1), "gelu dx"));
}

TEST_P(ActivationGrad, Relu) {
  const Shape shape = GetParam();
  Tensor x = randn(shape, 43), w = randn(shape, 44);
  // Keep inputs away from the kink at 0, where the finite difference is not a derivative.
  float* px = x.f32();
  for (int64_t i = 0; i < x.numel(); ++i)
    if (std::fabs(px[i]) < 1e-3f) px[i] = 0.5f;
  const auto num = fd_grad(
      [](const std::vector<double>& v) {
        std::vector<double> y(v.size());
        ref::relu_forward(y.data(), v.data(), static_cast<int64_t>(v.size()));
        return y;
      },
      to_double(x), to_double(w));
  EXPECT_TRUE(all_close(ops::relu_backward(w, x), num, f32_tol(1), "relu dx"));
}

TEST_P(ActivationGrad, Softmax) {
  const Shape shape = GetParam();
  const int64_t C = shape.back(), rows = shape_numel(shape) / C;
  Tensor x = randn(shape, 45, 2.0f), w = randn(shape, 46);
  const auto num = fd_grad(
      [&](const std::vector<double>& v) {
        std::vector<double> y(v.size());
        ref::softmax_forward(y.data(), v.data(), rows, C);
        return y;
      },
      to_double(x), to_double(w));
  EXPECT_TRUE(all_close(ops::softmax_backward(w, ops::softmax(x)), num, 4 * f32_tol(C), "softmax dx"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, ActivationGrad,
                         ::testing::Values(Shape{1, 1}, Shape{3, 7}, Shape{5, 17, 33},
                                           Shape{2, 3, 129}));

}  // namespace
}  // namespace perceiver
