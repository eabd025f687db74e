// Elementwise ops (broadcast add, sub, mul, scale, add/axpy in place, sum_to, expand_leading,
// concat_last/split_last) against the double reference on odd and threaded shapes; errors.
#include <gtest/gtest.h>

#include <cmath>

#include <vector>

#include "kernels/reference/elementwise.h"
#include "ops/op_test_util.h"
#include "perceiver/ops/elementwise.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::randn;
using testing::throws_op_error;
using testing::to_double;

struct BroadcastCase {
  Shape a, b;
};

class ElementwiseBroadcast : public ::testing::TestWithParam<BroadcastCase> {};

TEST_P(ElementwiseBroadcast, AddMatchesReference) {
  const auto [sa, sb] = GetParam();
  Tensor a = randn(sa, 51), b = randn(sb, 52);
  const int64_t cols = shape_numel(sb), rows = shape_numel(sa) / cols;
  const std::vector<double> ad = to_double(a), bd = to_double(b);
  std::vector<double> out(ad.size());
  ref::add_forward(out.data(), ad.data(), bd.data(), rows, cols);
  Tensor y = ops::add(a, b);
  EXPECT_EQ(y.shape(), sa);
  EXPECT_TRUE(all_close(y, out, f32_tol(1), "add"));
}

TEST_P(ElementwiseBroadcast, SumToMatchesReference) {
  const auto [sa, sb] = GetParam();
  Tensor x = randn(sa, 53);
  const int64_t cols = shape_numel(sb), rows = shape_numel(sa) / cols;
  const std::vector<double> xd = to_double(x);
  std::vector<double> out(cols);
  ref::sum_to_forward(out.data(), xd.data(), rows, cols);
  Tensor y = ops::sum_to(x, sb);
  EXPECT_EQ(y.shape(), sb);
  EXPECT_TRUE(all_close(y, out, f32_tol(rows), "sum_to"));
}

TEST_P(ElementwiseBroadcast, ExpandLeadingMatchesReference) {
  const auto [sa, sb] = GetParam();
  Tensor x = randn(sb, 54);
  const int64_t n = 3;
  const std::vector<double> xd = to_double(x);
  std::vector<double> out(n * x.numel());
  ref::expand_leading_forward(out.data(), xd.data(), n, x.numel());
  Tensor y = ops::expand_leading(x, n);
  Shape expect{n};
  expect.insert(expect.end(), sb.begin(), sb.end());
  EXPECT_EQ(y.shape(), expect);
  EXPECT_TRUE(all_close(y, out, 0.0, "expand_leading"));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ElementwiseBroadcast,
    ::testing::Values(BroadcastCase{{1, 1}, {1, 1}}, BroadcastCase{{3, 7}, {7}},
                      BroadcastCase{{3, 7}, {3, 7}}, BroadcastCase{{5, 17, 33}, {33}},
                      BroadcastCase{{5, 17, 33}, {17, 33}}, BroadcastCase{{2, 3, 129}, {}},
                      BroadcastCase{{2, 3, 129}, {129}}, BroadcastCase{{1031, 257}, {257}},
                      BroadcastCase{{4, 300, 129}, {300, 129}}));

class ElementwiseSame : public ::testing::TestWithParam<Shape> {};

TEST_P(ElementwiseSame, ArithmeticMatchesReference) {
  const Shape shape = GetParam();
  Tensor a = randn(shape, 55), b = randn(shape, 56);
  const int64_t n = a.numel();
  const std::vector<double> ad = to_double(a), bd = to_double(b);
  std::vector<double> out(n);
  ref::sub_forward(out.data(), ad.data(), bd.data(), n);
  EXPECT_TRUE(all_close(ops::sub(a, b), out, f32_tol(1), "sub"));
  ref::mul_forward(out.data(), ad.data(), bd.data(), n);
  EXPECT_TRUE(all_close(ops::mul(a, b), out, f32_tol(1), "mul"));
  ref::scale_forward(out.data(), ad.data(), -0.37, n);
  EXPECT_TRUE(all_close(ops::scale(a, -0.37f), out, f32_tol(1), "scale"));

  Tensor dst = a.clone();
  ops::add_inplace(dst, b);
  out = ad;
  ref::axpy_inplace(out.data(), 1.0, bd.data(), n);
  EXPECT_TRUE(all_close(dst, out, f32_tol(1), "add_inplace"));
  ops::axpy_inplace(dst, 2.5f, a);
  ref::axpy_inplace(out.data(), 2.5, ad.data(), n);
  EXPECT_TRUE(all_close(dst, out, f32_tol(2), "axpy_inplace"));
}

TEST_P(ElementwiseSame, ConcatSplitMatchesReference) {
  const Shape shape = GetParam();
  Shape sb = shape;
  sb.back() = 5;
  Tensor a = randn(shape, 57), b = randn(sb, 58);
  const int64_t c1 = shape.back(), c2 = 5, rows = a.numel() / c1;
  const std::vector<double> ad = to_double(a), bd = to_double(b);
  std::vector<double> out(rows * (c1 + c2)), ra(ad.size()), rb(bd.size());
  ref::concat_last_forward(out.data(), ad.data(), bd.data(), rows, c1, c2);
  Tensor y = ops::concat_last(a, b);
  EXPECT_EQ(y.dim(-1), c1 + c2);
  EXPECT_TRUE(all_close(y, out, 0.0, "concat_last"));
  // split the reference concat back: exact copies of a and b
  const std::vector<double> yd = to_double(y);
  ref::split_last_forward(ra.data(), rb.data(), yd.data(), rows, c1, c2);
  auto [sa2, sb2] = ops::split_last(y, c1);
  EXPECT_EQ(sa2.shape(), shape);
  EXPECT_EQ(sb2.shape(), sb);
  EXPECT_TRUE(all_close(sa2, ra, 0.0, "split_last a"));
  EXPECT_TRUE(all_close(sb2, rb, 0.0, "split_last b"));
  EXPECT_TRUE(all_close(sa2, ad, 0.0, "split_last roundtrip a"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, ElementwiseSame,
                         ::testing::Values(Shape{1, 1}, Shape{3, 7}, Shape{5, 17, 33},
                                           Shape{2, 3, 129}, Shape{200003}));

TEST_P(ElementwiseSame, LogMatchesReference) {
  const Shape shape = GetParam();
  Tensor x = randn(shape, 41);
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = x.f32()[i] * x.f32()[i];  // a power: >= 0
  const int64_t n = x.numel();
  std::vector<double> out(static_cast<size_t>(n)), xd = to_double(x);
  ref::log_forward(out.data(), xd.data(), 1e-3, n);
  EXPECT_TRUE(all_close(ops::log(x, 1e-3f), out, f32_tol(4), "log"));
  std::vector<double> dx(static_cast<size_t>(n)), dyd = to_double(x);
  ref::log_backward(dx.data(), dyd.data(), xd.data(), 1e-3, n);
  EXPECT_TRUE(all_close(ops::log_backward(x, x, 1e-3f), dx, f32_tol(4), "log_backward"));
}

TEST(ElementwiseOp, LogRejectsNonPositiveAndPropagatesNaN) {
  EXPECT_TRUE(throws_op_error([] { ops::log(Tensor::from_vector({3}, {1.0f, -2.0f, 3.0f}), 1.0f); }, "log"));
  EXPECT_TRUE(throws_op_error([] { ops::log(Tensor::zeros({2}), 0.0f); }, "log"));
  const Tensor y = ops::log(Tensor::from_vector({2}, {std::nanf(""), 0.0f}), 1.0f);
  EXPECT_TRUE(std::isnan(y.f32()[0]));
  EXPECT_EQ(y.f32()[1], 0.0f);
}

TEST(ElementwiseOp, RejectsBadInputs) {
  Tensor a = randn({3, 7}, 1), b = randn({7, 3}, 2), ai = Tensor::zeros({3, 7}, DType::kI32);
  EXPECT_TRUE(throws_op_error([&] { ops::add(a, b); }, "add"));
  EXPECT_TRUE(throws_op_error([&] { ops::add(a, randn({3}, 3)); }, "add"));
  EXPECT_TRUE(throws_op_error([&] { ops::add(a, ai); }, "add"));
  EXPECT_TRUE(throws_op_error([&] { ops::sub(a, b); }, "sub"));
  EXPECT_TRUE(throws_op_error([&] { ops::mul(a, randn({7}, 3)); }, "mul"));
  EXPECT_TRUE(throws_op_error([&] { ops::scale(ai, 2.0f); }, "scale"));
  EXPECT_TRUE(throws_op_error([&] { ops::add_inplace(a, b); }, "add_inplace"));
  EXPECT_TRUE(throws_op_error([&] { ops::axpy_inplace(a, 1.0f, b); }, "axpy_inplace"));
  EXPECT_TRUE(throws_op_error([&] { ops::sum_to(a, {3}); }, "sum_to"));
  EXPECT_TRUE(throws_op_error([&] { ops::sum_to(a, {2, 3, 7}); }, "sum_to"));
  EXPECT_TRUE(throws_op_error([&] { ops::expand_leading(a, -1); }, "expand_leading"));
  EXPECT_TRUE(throws_op_error([&] { ops::concat_last(a, randn({4, 2}, 4)); }, "concat_last"));
  EXPECT_TRUE(throws_op_error([&] { ops::concat_last(a, randn({2}, 4)); }, "concat_last"));
  EXPECT_TRUE(throws_op_error([&] { ops::concat_last(a, Tensor::scalar(1.0f)); }, "concat_last"));
  EXPECT_TRUE(throws_op_error([&] { ops::split_last(a, 8); }, "split_last"));
  EXPECT_TRUE(throws_op_error([&] { ops::split_last(a, -1); }, "split_last"));
}

}  // namespace
}  // namespace perceiver
