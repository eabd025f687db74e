// ops::mean over every axis, mean_backward, center, standardize and sum_all against the double reference on odd
// and threaded shapes; axis, shape and dtype errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/reference/reduce.h"
#include "ops/op_test_util.h"
#include "perceiver/ops/convert.h"
#include "perceiver/ops/reduce.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::randn;
using testing::throws_op_error;
using testing::to_double;

struct View {
  int64_t outer = 1, len = 1, inner = 1;
  Shape reduced;
};

View view_of(const Shape& s, int axis) {
  View v;
  for (int i = 0; i < static_cast<int>(s.size()); ++i) {
    if (i < axis) v.outer *= s[i];
    if (i > axis) v.inner *= s[i];
    if (i != axis) v.reduced.push_back(s[i]);
  }
  v.len = s[axis];
  return v;
}

class ReduceOp : public ::testing::TestWithParam<Shape> {};

TEST_P(ReduceOp, MeanEveryAxisMatchesReference) {
  const Shape shape = GetParam();
  const int rank = static_cast<int>(shape.size());
  Tensor x = randn(shape, 81);
  const std::vector<double> xd = to_double(x);
  for (int axis = 0; axis < rank; ++axis) {
    const View v = view_of(shape, axis);
    std::vector<double> y(v.outer * v.inner);
    ref::mean_forward(y.data(), xd.data(), v.outer, v.len, v.inner);
    Tensor got = ops::mean(x, axis);
    EXPECT_EQ(got.shape(), v.reduced);
    EXPECT_TRUE(all_close(got, y, f32_tol(v.len), "mean axis " + std::to_string(axis)));
    // The same axis counted from the end.
    EXPECT_TRUE(all_close(ops::mean(x, axis - rank), y, f32_tol(v.len), "mean negative axis"));
  }
}

TEST_P(ReduceOp, MeanBackwardEveryAxisMatchesReference) {
  const Shape shape = GetParam();
  for (int axis = 0; axis < static_cast<int>(shape.size()); ++axis) {
    const View v = view_of(shape, axis);
    Tensor dy = randn(v.reduced, 82 + axis);
    const std::vector<double> dyd = to_double(dy);
    std::vector<double> dx(shape_numel(shape));
    ref::mean_backward(dx.data(), dyd.data(), v.outer, v.len, v.inner);
    Tensor got = ops::mean_backward(dy, shape, axis);
    EXPECT_EQ(got.shape(), shape);
    EXPECT_TRUE(all_close(got, dx, f32_tol(1), "mean_backward axis " + std::to_string(axis)));
  }
}

TEST_P(ReduceOp, CenterEveryAxisMatchesReference) {
  const Shape shape = GetParam();
  const int rank = static_cast<int>(shape.size());
  Tensor x = randn(shape, 83);
  // an offset per line, so the mean removed is far from zero (as log powers are)
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] += 5.0f + 0.01f * static_cast<float>(i % 97);
  const std::vector<double> xd = to_double(x);
  for (int axis = 0; axis < rank; ++axis) {
    const View v = view_of(shape, axis);
    std::vector<double> y(xd.size());
    ref::center(y.data(), xd.data(), v.outer, v.len, v.inner);
    Tensor got = ops::center(x, axis);
    EXPECT_EQ(got.shape(), shape);
    // |x| ~ 6: the mean's rounding scales with len and the values' size
    EXPECT_TRUE(all_close(got, y, f32_tol(8 * v.len), "center axis " + std::to_string(axis)));
    EXPECT_TRUE(all_close(ops::center(x, axis - rank), y, f32_tol(8 * v.len), "center negative axis"));
    // centred lines average to zero, up to rounding of values ~6 over len terms
    Tensor m = ops::mean(got, axis);
    float worst = 0;
    for (int64_t i = 0; i < m.numel(); ++i) worst = std::max(worst, std::fabs(m.f32()[i]));
    EXPECT_LE(worst, 8.0f * static_cast<float>(v.len) * 6.0f * std::numeric_limits<float>::epsilon())
        << "mean of centred, axis " << axis;
  }
}

// Float rounding of x - mean is ~eps * len * max|x| per line, magnified by rstd: the bounds scale
// with each line's condition k = 1 + max|x| * rstd (lines of nearly equal values are ill-conditioned).
struct LineCondition {
  std::vector<double> k;  // (outer * inner), per line
  double of(const View& v, int64_t flat) const { return k[(flat / (v.len * v.inner)) * v.inner + flat % v.inner]; }
};

LineCondition line_condition(const std::vector<double>& x, const std::vector<double>& rstd, const View& v) {
  LineCondition c{std::vector<double>(rstd.size(), 0.0)};
  for (int64_t o = 0; o < v.outer; ++o)
    for (int64_t l = 0; l < v.len; ++l)
      for (int64_t i = 0; i < v.inner; ++i)
        c.k[o * v.inner + i] = std::max(c.k[o * v.inner + i], std::fabs(x[(o * v.len + l) * v.inner + i]));
  for (size_t j = 0; j < c.k.size(); ++j) c.k[j] = 1.0 + c.k[j] * rstd[j];
  return c;
}

TEST_P(ReduceOp, StandardizeEveryAxisMatchesReference) {
  const Shape shape = GetParam();
  const int rank = static_cast<int>(shape.size());
  Tensor x = randn(shape, 84);
  // offsets and scales per element, so lines have means far from zero and spreads far from one
  for (int64_t i = 0; i < x.numel(); ++i)
    x.f32()[i] = 3.0f * x.f32()[i] * (0.5f + 0.01f * static_cast<float>(i % 89)) - 4.0f;
  const std::vector<double> xd = to_double(x);
  for (const float eps : {1e-5f, 0.5f}) {
    for (int axis = 0; axis < rank; ++axis) {
      const View v = view_of(shape, axis);
      std::vector<double> y(xd.size()), rstd(v.outer * v.inner);
      ref::standardize(y.data(), rstd.data(), xd.data(), v.outer, v.len, v.inner, static_cast<double>(eps));
      const LineCondition c = line_condition(xd, rstd, v);
      std::vector<double> y_bound(y.size()), r_bound(rstd.size());
      const double unit = 16.0 * static_cast<double>(v.len) * testing::kF32Eps;
      for (size_t j = 0; j < y.size(); ++j) y_bound[j] = unit * c.of(v, static_cast<int64_t>(j));
      for (size_t j = 0; j < rstd.size(); ++j) r_bound[j] = unit * c.k[j] * rstd[j];
      const std::string what = "standardize axis " + std::to_string(axis) + " eps " + std::to_string(eps);
      ops::Standardized got = ops::standardize(x, axis, eps);
      EXPECT_EQ(got.y.shape(), shape);
      EXPECT_EQ(got.rstd.shape(), v.reduced);
      EXPECT_TRUE(testing::all_within(got.rstd, rstd, r_bound, what + " rstd"));
      EXPECT_TRUE(testing::all_within(got.y, y, y_bound, what));
      EXPECT_TRUE(testing::all_within(ops::standardize(x, axis - rank, eps).y, y, y_bound, what + " negative"));
    }
  }
}

TEST_P(ReduceOp, SumAllMatchesReference) {
  Tensor x = randn(GetParam(), 85);
  const std::vector<double> xd = to_double(x);
  const double ref = ref::sum_all(xd.data(), x.numel());
  Tensor got = ops::sum_all(x);
  EXPECT_EQ(got.rank(), 0);
  // Double accumulation: only the final rounding to float remains.
  EXPECT_TRUE(all_close(got, {ref}, f32_tol(1), "sum_all"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, ReduceOp,
                         ::testing::Values(Shape{1, 1}, Shape{3, 7}, Shape{5, 17, 33},
                                           Shape{2, 3, 129}, Shape{64, 1031, 3}, Shape{2, 70001}));

TEST_P(ReduceOp, CountNonFiniteMatchesReference) {
  const Shape shape = GetParam();
  Tensor x = randn(shape, 11);
  const int64_t n = x.numel();
  // None, then NaN / +inf / -inf scattered (incl. the last element), with huge finite values
  // (FLT_MAX, denormals) that must not count.
  x.f32()[0] = std::numeric_limits<float>::max();
  if (n > 1) x.f32()[n - 1] = std::numeric_limits<float>::denorm_min();
  for (int round = 0; round < 2; ++round) {
    if (round == 1) {
      const float bad[] = {std::nanf(""), std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
      for (int64_t i = n / 3, k = 0; i < n; i += std::max<int64_t>(1, n / 5), ++k) x.f32()[i] = bad[k % 3];
      x.f32()[n - 1] = std::nanf("");
    }
    int64_t ref_first = 0;
    const int64_t ref = ref::count_nonfinite(x.f32(), n, &ref_first);
    const ops::NonFinite got = ops::count_nonfinite(x);
    EXPECT_EQ(got.count, ref) << shape_str(shape) << " round " << round;
    EXPECT_EQ(got.first, ref_first) << shape_str(shape) << " round " << round;
    EXPECT_EQ(static_cast<bool>(got), round == 1);
    // bf16: the same positions are non-finite after conversion (FLT_MAX rounds to bf16 inf: skip it).
    if (round == 1) {
      Tensor xb = x;
      xb.f32()[0] = 1.0f;
      const ops::NonFinite fb = ops::count_nonfinite(ops::to_bf16(xb));
      int64_t rf = 0;
      EXPECT_EQ(fb.count, ref::count_nonfinite(xb.f32(), n, &rf));
      EXPECT_EQ(fb.first, rf);
    }
  }
}

TEST(ReduceOp, NonFiniteDescriptionAndIntegers) {
  Tensor x = Tensor::from_vector({4}, {1.0f, std::numeric_limits<float>::infinity(), std::nanf(""), 2.0f});
  const ops::NonFinite r = ops::count_nonfinite(x);
  EXPECT_EQ(r.describe(), "2 non-finite values (first: inf at element 1)");
  EXPECT_FALSE(ops::count_nonfinite(Tensor::zeros({5}, DType::kI32)));
  EXPECT_FALSE(ops::count_nonfinite(Tensor::zeros({0})));
}

TEST(ReduceOp, SumAllOfOnesIsExact) {
  EXPECT_EQ(ops::sum_all(Tensor::full({100003}, 1.0f)).item(), 100003.0f);
  EXPECT_EQ(ops::sum_all(Tensor::zeros({0})).item(), 0.0f);
}

TEST(ReduceOp, RejectsBadInputs) {
  Tensor x = randn({3, 7}, 1);
  EXPECT_TRUE(throws_op_error([&] { ops::mean(x, 2); }, "mean"));
  EXPECT_TRUE(throws_op_error([&] { ops::mean(x, -3); }, "mean"));
  EXPECT_TRUE(throws_op_error([&] { ops::mean(Tensor::scalar(1.0f), 0); }, "mean"));
  EXPECT_TRUE(throws_op_error([&] { ops::mean(Tensor::zeros({3, 7}, DType::kI32), 0); }, "mean"));
  EXPECT_TRUE(throws_op_error([&] { ops::mean(Tensor::zeros({3, 0}), 1); }, "mean"));
  EXPECT_TRUE(throws_op_error([&] { ops::mean_backward(randn({3}, 2), {3, 7}, 0); }, "mean_backward"));
  EXPECT_TRUE(throws_op_error([&] { ops::mean_backward(randn({7}, 2), {3, 7}, 5); }, "mean_backward"));
  EXPECT_TRUE(throws_op_error([&] { ops::sum_all(Tensor::zeros({2}, DType::kI32)); }, "sum_all"));
  EXPECT_TRUE(throws_op_error([&] { ops::center(x, 2); }, "center"));
  EXPECT_TRUE(throws_op_error([&] { ops::center(Tensor::zeros({3, 0}), 1); }, "center"));
  EXPECT_TRUE(throws_op_error([&] { ops::center(Tensor::zeros({3, 7}, DType::kI32), 0); }, "center"));
  EXPECT_TRUE(throws_op_error([&] { ops::standardize(x, 2, 1e-5f); }, "standardize"));
  EXPECT_TRUE(throws_op_error([&] { ops::standardize(x, 1, 0.0f); }, "standardize"));
  EXPECT_TRUE(throws_op_error([&] { ops::standardize(x, 1, std::nanf("")); }, "standardize"));
  EXPECT_TRUE(throws_op_error([&] { ops::standardize(Tensor::zeros({3, 0}), 1, 1e-5f); }, "standardize"));
  const ops::Standardized s = ops::standardize(x, 1, 1e-5f);
  EXPECT_TRUE(throws_op_error([&] { ops::standardize_backward(randn({3, 6}, 3), s.y, s.rstd, 1); },
                              "standardize_backward"));
  EXPECT_TRUE(throws_op_error([&] { ops::standardize_backward(x, s.y, randn({7}, 3), 1); }, "standardize_backward"));
}

}  // namespace
}  // namespace perceiver
