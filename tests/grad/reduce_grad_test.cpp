// mean_backward, center's and standardize's backward over every axis against central finite differences of the double reference
// mean: f(x) = sum_i w_i mean(x, axis)_i; center(x, axis) = x - mean, through ops and the tape.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/reference/reduce.h"
#include "ops/op_test_util.h"
#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/ops/elementwise.h"
#include "perceiver/ops/reduce.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::fd_grad;
using testing::randn;
using testing::to_double;

class ReduceGrad : public ::testing::TestWithParam<Shape> {};

TEST_P(ReduceGrad, MeanEveryAxis) {
  const Shape shape = GetParam();
  const int rank = static_cast<int>(shape.size());
  Tensor x = randn(shape, 91);
  for (int axis = 0; axis < rank; ++axis) {
    int64_t outer = 1, inner = 1;
    Shape reduced;
    for (int i = 0; i < rank; ++i) {
      if (i < axis) outer *= shape[i];
      if (i > axis) inner *= shape[i];
      if (i != axis) reduced.push_back(shape[i]);
    }
    const int64_t len = shape[axis];
    Tensor w = randn(reduced, 92 + axis);
    const auto num = fd_grad(
        [&](const std::vector<double>& v) {
          std::vector<double> y(outer * inner);
          ref::mean_forward(y.data(), v.data(), outer, len, inner);
          return y;
        },
        to_double(x), to_double(w));
    // Checked with the axis counted from the end too (as autograd may pass it).
    EXPECT_TRUE(all_close(ops::mean_backward(w, shape, axis), num, f32_tol(1),
                          "mean dx axis " + std::to_string(axis)));
    EXPECT_TRUE(all_close(ops::mean_backward(w, shape, axis - rank), num, f32_tol(1),
                          "mean dx axis " + std::to_string(axis - rank)));
  }
}

// center: f(x) = sum w * center(x, axis); the backward is center(w, axis) (autograd's rule).
TEST_P(ReduceGrad, CenterEveryAxis) {
  const Shape shape = GetParam();
  const int rank = static_cast<int>(shape.size());
  Tensor x = randn(shape, 93);
  for (int axis = 0; axis < rank; ++axis) {
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < rank; ++i) {
      if (i < axis) outer *= shape[i];
      if (i > axis) inner *= shape[i];
    }
    const int64_t len = shape[axis];
    Tensor w = randn(shape, 94 + axis);
    const auto num = fd_grad(
        [&](const std::vector<double>& v) {
          std::vector<double> y(v.size());
          ref::center(y.data(), v.data(), outer, len, inner);
          return y;
        },
        to_double(x), to_double(w));
    EXPECT_TRUE(all_close(ops::center(w, axis), num, f32_tol(len), "center dx axis " + std::to_string(axis)));
    // through the tape
    Tensor xl = x.clone();
    xl.set_requires_grad(true);
    Tensor loss = ag::reshape(ag::mean(ag::reshape(ag::mul(ag::center(xl, axis), w), {1, x.numel()}), 1), {});
    autograd::backward(loss);
    EXPECT_TRUE(all_close(ops::scale(xl.grad(), static_cast<float>(x.numel())), num, f32_tol(len),
                          "center tape dx axis " + std::to_string(axis)));
  }
}

// standardize: f(x) = sum w * standardize(x, axis); through ops and the tape. A wrong term of the
// rule (say the y * mean(dy * y) projection dropped) is off by O(1), far outside the tolerance.
TEST_P(ReduceGrad, StandardizeEveryAxis) {
  const Shape shape = GetParam();
  const int rank = static_cast<int>(shape.size());
  Tensor x = randn(shape, 95);
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = 2.0f * x.f32()[i] + 1.0f;
  const float eps = 1e-3f;
  for (int axis = 0; axis < rank; ++axis) {
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < rank; ++i) {
      if (i < axis) outer *= shape[i];
      if (i > axis) inner *= shape[i];
    }
    const int64_t len = shape[axis];
    Tensor w = randn(shape, 96 + axis);
    const auto num = fd_grad(
        [&](const std::vector<double>& v) {
          std::vector<double> y(v.size()), rstd(outer * inner);
          ref::standardize(y.data(), rstd.data(), v.data(), outer, len, inner, static_cast<double>(eps));
          return y;
        },
        to_double(x), to_double(w));
    // float rounding ~ eps * len * max|x| * rstd per line (its condition k), times rstd * max|w|
    const std::vector<double> xd = to_double(x), wd = to_double(w);
    std::vector<double> yd(xd.size()), rstd(outer * inner), k(outer * inner, 0.0), wmax(outer * inner, 0.0);
    ref::standardize(yd.data(), rstd.data(), xd.data(), outer, len, inner, static_cast<double>(eps));
    auto line = [&](int64_t flat) { return (flat / (len * inner)) * inner + flat % inner; };
    for (int64_t j = 0; j < x.numel(); ++j) {
      k[line(j)] = std::max(k[line(j)], std::fabs(xd[j]));
      wmax[line(j)] = std::max(wmax[line(j)], std::fabs(wd[j]));
    }
    std::vector<double> bound(xd.size());
    for (int64_t j = 0; j < x.numel(); ++j) {
      const int64_t q = line(j);
      bound[j] = 16.0 * static_cast<double>(len) * testing::kF32Eps * (1.0 + k[q] * rstd[q]) * rstd[q] * (1.0 + wmax[q]);
    }
    const ops::Standardized s = ops::standardize(x, axis, eps);
    const std::string what = "standardize dx axis " + std::to_string(axis);
    EXPECT_TRUE(testing::all_within(ops::standardize_backward(w, s.y, s.rstd, axis), num, bound, what));
    Tensor xl = x.clone();
    xl.set_requires_grad(true);
    Tensor loss = ag::reshape(ag::mean(ag::reshape(ag::mul(ag::standardize(xl, axis, eps), w), {1, x.numel()}), 1), {});
    autograd::backward(loss);
    EXPECT_TRUE(testing::all_within(ops::scale(xl.grad(), static_cast<float>(x.numel())), num, bound, what + " tape"));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, ReduceGrad,
                         ::testing::Values(Shape{1, 1}, Shape{3, 7}, Shape{5, 17, 33}, Shape{2, 3, 129}));

}  // namespace
}  // namespace perceiver
