// ops::gelu, relu, softmax and their backward ops (AVX-512 kernels) against the double
// reference on odd and threaded shapes, wide input ranges; dtype and shape errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/reference/activation.h"
#include "ops/op_test_util.h"
#include "perceiver/ops/activation.h"
#include "perceiver/ops/elementwise.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::randn;
using testing::throws_op_error;
using testing::to_double;

// dx_i = y_i (dy_i - dot) cancels when dy_i ~ dot: float rounding is relative to the terms
// y_i (|dy_i| + |dot|), not to dx. Scale f32_tol by the largest term over rms(dx).
double softmax_backward_tol(const std::vector<double>& y, const std::vector<double>& dy,
                            const std::vector<double>& dx, int64_t C) {
  double worst_term = 0, sq = 0;
  for (size_t r = 0; r * C < y.size(); ++r) {
    double dot = 0;
    for (int64_t i = 0; i < C; ++i) dot += y[r * C + i] * dy[r * C + i];
    for (int64_t i = 0; i < C; ++i)
      worst_term = std::max(worst_term, y[r * C + i] * (std::fabs(dy[r * C + i]) + std::fabs(dot)));
  }
  for (double v : dx) sq += v * v;
  const double rms = std::sqrt(sq / dx.size());
  return f32_tol(C) * std::max(1.0, rms > 0 ? worst_term / rms : 1.0);
}

class ActivationOp : public ::testing::TestWithParam<Shape> {};

TEST_P(ActivationOp, GeluMatchesReference) {
  const Shape shape = GetParam();
  Tensor x = randn(shape, 31, 3.0f), dy = randn(shape, 32);
  const int64_t n = x.numel();
  std::vector<double> xd = to_double(x), dyd = to_double(dy), y(n), dx(n);
  ref::gelu_forward(y.data(), xd.data(), n);
  ref::gelu_backward(dx.data(), dyd.data(), xd.data(), n);
  EXPECT_TRUE(all_close(ops::gelu(x), y, f32_tol(1), "gelu"));
  EXPECT_TRUE(all_close(ops::gelu_backward(dy, x), dx, f32_tol(1), "gelu_backward"));
  // the training forward: the same y, and dy * grad is gelu_backward bit for bit
  const ops::GeluOut g = ops::gelu_with_grad(x);
  EXPECT_EQ(g.y.to_vector(), ops::gelu(x).to_vector());
  EXPECT_EQ(ops::mul(dy, g.grad).to_vector(), ops::gelu_backward(dy, x).to_vector());
}

TEST_P(ActivationOp, ReluMatchesReference) {
  const Shape shape = GetParam();
  Tensor x = randn(shape, 33), dy = randn(shape, 34);
  const int64_t n = x.numel();
  std::vector<double> xd = to_double(x), dyd = to_double(dy), y(n), dx(n);
  ref::relu_forward(y.data(), xd.data(), n);
  ref::relu_backward(dx.data(), dyd.data(), xd.data(), n);
  EXPECT_TRUE(all_close(ops::relu(x), y, 0.0, "relu"));
  EXPECT_TRUE(all_close(ops::relu_backward(dy, x), dx, 0.0, "relu_backward"));
}

TEST_P(ActivationOp, SoftmaxMatchesReference) {
  const Shape shape = GetParam();
  const int64_t C = shape.back(), rows = shape_numel(shape) / C;
  // Large logits around 1000: the max subtraction must keep exp in range.
  Tensor x = randn(shape, 35, 8.0f), dy = randn(shape, 36);
  float* px = x.f32();
  for (int64_t i = 0; i < x.numel(); ++i) px[i] += 1000.0f;
  std::vector<double> xd = to_double(x), y(x.numel()), dx(x.numel());
  ref::softmax_forward(y.data(), xd.data(), rows, C);
  Tensor ys = ops::softmax(x);
  // The reference sees the same float logits, and x - max is exact within one binade.
  EXPECT_TRUE(all_close(ys, y, 2 * f32_tol(C), "softmax"));
  // Backward on the float y: compare against the reference applied to the same y.
  const std::vector<double> ysd = to_double(ys), dyd = to_double(dy);
  ref::softmax_backward(dx.data(), dyd.data(), ysd.data(), rows, C);
  EXPECT_TRUE(all_close(ops::softmax_backward(dy, ys), dx, softmax_backward_tol(ysd, dyd, dx, C),
                        "softmax_backward"));
}

TEST_P(ActivationOp, SoftmaxAccurateOnUnitLogits) {
  const Shape shape = GetParam();
  const int64_t C = shape.back(), rows = shape_numel(shape) / C;
  Tensor x = randn(shape, 37, 2.0f);
  std::vector<double> xd = to_double(x), y(x.numel());
  ref::softmax_forward(y.data(), xd.data(), rows, C);
  Tensor ys = ops::softmax(x);
  EXPECT_TRUE(all_close(ys, y, f32_tol(C), "softmax"));
  const std::vector<float> yv = ys.to_vector();
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t i = 0; i < C; ++i) s += yv[r * C + i];
    EXPECT_NEAR(s, 1.0, f32_tol(C)) << "row " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, ActivationOp,
                         ::testing::Values(Shape{1, 1}, Shape{3, 7}, Shape{5, 17, 33},
                                           Shape{2, 3, 129}, Shape{97, 1031}));

TEST(ActivationOp, GeluTailsAndSpecialValues) {
  const std::vector<float> xs = {-12.0f, -9.0f, -6.0f, -4.0f, -1e-3f, 0.0f, 1e-3f, 4.0f, 9.0f, 30.0f};
  Tensor x = Tensor::from_vector({static_cast<int64_t>(xs.size())}, xs);
  std::vector<double> xd = to_double(x), y(xs.size());
  ref::gelu_forward(y.data(), xd.data(), static_cast<int64_t>(xs.size()));
  EXPECT_TRUE(all_close(ops::gelu(x), y, f32_tol(1), "gelu tails"));
  const Tensor ones = Tensor::full(x.shape(), 1.0f);
  const ops::GeluOut g = ops::gelu_with_grad(x);
  EXPECT_EQ(g.y.to_vector(), ops::gelu(x).to_vector());
  EXPECT_EQ(g.grad.to_vector(), ops::gelu_backward(ones, x).to_vector());
  const std::vector<float> nan_in = {std::nanf("")};
  EXPECT_TRUE(std::isnan(ops::gelu(Tensor::from_vector({1}, nan_in)).item()));
}

TEST(ActivationOp, SoftmaxRowWithNaNOrInfIsNaN) {
  for (int64_t n : {5, 40}) {  // the vector body and the masked tail
    Tensor x = randn({3, n}, 9);
    x.f32()[3] = std::nanf("");
    x.f32()[n + 1] = std::numeric_limits<float>::infinity();
    const Tensor y = ops::softmax(x);
    for (int64_t j = 0; j < n; ++j) {
      EXPECT_TRUE(std::isnan(y.f32()[j])) << n << " row 0 col " << j;
      EXPECT_TRUE(std::isnan(y.f32()[n + j])) << n << " row 1 col " << j;
      EXPECT_TRUE(std::isfinite(y.f32()[2 * n + j])) << n << " row 2 col " << j;
    }
  }
}

TEST(ActivationOp, RejectsBadInputs) {
  Tensor xi = Tensor::zeros({3, 7}, DType::kI32), x = randn({3, 7}, 1);
  EXPECT_TRUE(throws_op_error([&] { ops::gelu(xi); }, "gelu"));
  EXPECT_TRUE(throws_op_error([&] { ops::relu(xi); }, "relu"));
  EXPECT_TRUE(throws_op_error([&] { ops::softmax(xi); }, "softmax"));
  EXPECT_TRUE(throws_op_error([&] { ops::softmax(Tensor::scalar(1.0f)); }, "softmax"));
  EXPECT_TRUE(throws_op_error([&] { ops::softmax(Tensor::zeros({3, 0})); }, "softmax"));
  EXPECT_TRUE(throws_op_error([&] { ops::gelu_backward(randn({3, 8}, 2), x); }, "gelu_backward"));
  EXPECT_TRUE(throws_op_error([&] { ops::relu_backward(randn({7, 3}, 2), x); }, "relu_backward"));
  EXPECT_TRUE(throws_op_error([&] { ops::softmax_backward(randn({21}, 2), x); }, "softmax_backward"));
  EXPECT_TRUE(throws_op_error([&] { ops::gelu(Tensor()); }, "gelu"));
}

}  // namespace
}  // namespace perceiver
