// ops::max_pool2d and max_pool2d_backward against the double reference: HF's 3x3/2 unpadded
// pool on odd maps (12x16 -> 5x7), padded, asymmetric and overlapping windows; torch semantics
// (padding is -inf, first maximum wins ties, NaN propagates); shape and index errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <ostream>
#include <vector>

#include "kernels/reference/pooling.h"
#include "ops/op_test_util.h"
#include "perceiver/ops/pooling.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::randn;
using testing::throws_op_error;
using testing::to_double;

struct PoolCase {
  int64_t B, C, H, W;
  int kh, kw, sh, sw, ph, pw;
  ref::Pool2dShape ref() const { return {B * C, H, W, kh, kw, sh, sw, ph, pw}; }
  Shape in_shape() const { return {B, C, H, W}; }
};

std::ostream& operator<<(std::ostream& os, const PoolCase& c) {
  return os << "x[" << c.B << "," << c.C << "," << c.H << "," << c.W << "] k(" << c.kh << ","
            << c.kw << ") s(" << c.sh << "," << c.sw << ") p(" << c.ph << "," << c.pw << ")";
}

ops::MaxPoolOut pool(const Tensor& x, const PoolCase& c) {
  return ops::max_pool2d(x, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw);
}

class MaxPoolOp : public ::testing::TestWithParam<PoolCase> {};

TEST_P(MaxPoolOp, ForwardMatchesReferenceExactly) {
  const PoolCase c = GetParam();
  const ref::Pool2dShape s = c.ref();
  const Tensor x = randn(c.in_shape(), 1);
  const ops::MaxPoolOut out = pool(x, c);
  ASSERT_EQ(out.y.shape(), (Shape{c.B, c.C, s.OH(), s.OW()}));
  ASSERT_EQ(out.indices.dtype(), DType::kI32);
  std::vector<double> y(out.y.numel());
  std::vector<int32_t> idx(out.y.numel());
  const std::vector<double> xd = to_double(x);
  ref::max_pool2d_forward(y.data(), idx.data(), xd.data(), s);
  EXPECT_TRUE(all_close(out.y, y, 0.0, "y"));
  const int32_t* got = out.indices.data<int32_t>();
  EXPECT_EQ(std::vector<int32_t>(got, got + out.indices.numel()), idx);
}

TEST_P(MaxPoolOp, BackwardMatchesReference) {
  const PoolCase c = GetParam();
  const ref::Pool2dShape s = c.ref();
  const Tensor x = randn(c.in_shape(), 2);
  const ops::MaxPoolOut out = pool(x, c);
  const Tensor dy = randn(out.y.shape(), 3);
  const Tensor dx = ops::max_pool2d_backward(dy, out.indices, x.shape());
  ASSERT_EQ(dx.shape(), x.shape());
  std::vector<double> ref(x.numel());
  const std::vector<double> dyd = to_double(dy);
  ref::max_pool2d_backward(ref.data(), dyd.data(), out.indices.data<int32_t>(), s);
  EXPECT_TRUE(all_close(dx, ref, f32_tol(c.kh * c.kw), "dx"));
}

// {B, C, H, W, kh, kw, sh, sw, ph, pw}
INSTANTIATE_TEST_SUITE_P(Shapes, MaxPoolOp,
                         ::testing::Values(PoolCase{2, 3, 11, 13, 3, 3, 2, 2, 0, 0},   // HF pool, odd
                                           PoolCase{2, 4, 12, 16, 3, 3, 2, 2, 0, 0},   // 12x16 -> 5x7
                                           PoolCase{1, 2, 9, 10, 3, 3, 1, 1, 1, 1},    // padded, overlap
                                           PoolCase{2, 2, 8, 8, 2, 2, 2, 2, 0, 0},     // tiling
                                           PoolCase{1, 1, 7, 5, 5, 3, 2, 1, 2, 1},     // asymmetric
                                           PoolCase{3, 16, 56, 56, 3, 3, 2, 2, 1, 1}));  // threaded

TEST(MaxPoolOp, HfStemShapes) {
  // 12x16 -> 5x7 (HF conv fixture 24x32) and 112x112 -> 55x55.
  EXPECT_EQ(ops::max_pool2d(randn({1, 2, 12, 16}, 1), 3, 3, 2, 2, 0, 0).y.shape(), (Shape{1, 2, 5, 7}));
  EXPECT_EQ(ops::max_pool2d(randn({1, 1, 112, 112}, 1), 3, 3, 2, 2, 0, 0).y.shape(), (Shape{1, 1, 55, 55}));
}

TEST(MaxPoolOp, TiesPickTheFirstMaximum) {
  const Tensor x = Tensor::from_vector({1, 1, 3, 3}, {1, 5, 5, 5, 2, 5, 0, 5, 1});
  const ops::MaxPoolOut out = ops::max_pool2d(x, 2, 2, 1, 1, 0, 0);
  EXPECT_EQ(out.y.to_vector(), (std::vector<float>{5, 5, 5, 5}));
  const int32_t* idx = out.indices.data<int32_t>();
  EXPECT_EQ(std::vector<int32_t>(idx, idx + 4), (std::vector<int32_t>{1, 1, 3, 5}));
}

TEST(MaxPoolOp, PaddingIsMinusInfinity) {
  // All-negative input: a zero-padded pool would return 0 at the border.
  const Tensor x = Tensor::from_vector({1, 1, 2, 2}, {-4, -3, -2, -1});
  const ops::MaxPoolOut out = ops::max_pool2d(x, 3, 3, 1, 1, 1, 1);
  EXPECT_EQ(out.y.to_vector(), (std::vector<float>{-1, -1, -1, -1}));
  const int32_t* idx = out.indices.data<int32_t>();
  EXPECT_EQ(std::vector<int32_t>(idx, idx + 4), (std::vector<int32_t>{3, 3, 3, 3}));
}

TEST(MaxPoolOp, NanPropagates) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor x = Tensor::from_vector({1, 1, 2, 2}, {1, nan, 3, 2});
  const ops::MaxPoolOut out = ops::max_pool2d(x, 2, 2, 2, 2, 0, 0);
  EXPECT_TRUE(std::isnan(out.y.to_vector()[0]));
  EXPECT_EQ(out.indices.data<int32_t>()[0], 1);
}

TEST(MaxPoolOp, OverlappingWindowsAccumulateGradient) {
  // The centre of a 3x3 map is the max of all four 2x2/1 windows.
  const Tensor x = Tensor::from_vector({1, 1, 3, 3}, {0, 0, 0, 0, 9, 0, 0, 0, 0});
  const ops::MaxPoolOut out = ops::max_pool2d(x, 2, 2, 1, 1, 0, 0);
  const Tensor dx = ops::max_pool2d_backward(Tensor::from_vector({1, 1, 2, 2}, {1, 2, 3, 4}),
                                             out.indices, x.shape());
  EXPECT_EQ(dx.to_vector(), (std::vector<float>{0, 0, 0, 0, 10, 0, 0, 0, 0}));
}

TEST(MaxPoolOp, RejectsBadInputs) {
  const Tensor x = randn({2, 3, 11, 13}, 1);
  EXPECT_TRUE(throws_op_error([&] { ops::max_pool2d(randn({3, 11, 13}, 1), 3, 3, 2, 2, 0, 0); }, "max_pool2d"));
  EXPECT_TRUE(throws_op_error([&] { ops::max_pool2d(x, 0, 3, 2, 2, 0, 0); }, "max_pool2d"));
  EXPECT_TRUE(throws_op_error([&] { ops::max_pool2d(x, 3, 3, 0, 2, 0, 0); }, "max_pool2d"));
  EXPECT_TRUE(throws_op_error([&] { ops::max_pool2d(x, 3, 3, 2, 2, 2, 0); }, "max_pool2d"));   // pad > k/2
  EXPECT_TRUE(throws_op_error([&] { ops::max_pool2d(x, 3, 3, 2, 2, -1, 0); }, "max_pool2d"));
  EXPECT_TRUE(throws_op_error([&] { ops::max_pool2d(randn({1, 1, 2, 5}, 1), 3, 3, 2, 2, 0, 0); }, "max_pool2d"));
  EXPECT_TRUE(throws_op_error([&] { ops::max_pool2d(Tensor::zeros({2, 3, 11, 13}, DType::kI32), 3, 3, 2, 2, 0, 0); },
                              "max_pool2d"));
  const ops::MaxPoolOut out = ops::max_pool2d(x, 3, 3, 2, 2, 0, 0);
  const Tensor dy = randn(out.y.shape(), 2);
  EXPECT_NO_THROW(ops::max_pool2d_backward(dy, out.indices, x.shape()));
  EXPECT_TRUE(throws_op_error([&] { ops::max_pool2d_backward(dy, dy, x.shape()); }, "max_pool2d_backward"));
  EXPECT_TRUE(throws_op_error([&] { ops::max_pool2d_backward(randn({2, 3, 5, 5}, 1), out.indices, x.shape()); },
                              "max_pool2d_backward"));
  EXPECT_TRUE(throws_op_error([&] { ops::max_pool2d_backward(dy, out.indices, {2, 4, 11, 13}); },
                              "max_pool2d_backward"));
  EXPECT_TRUE(throws_op_error([&] { ops::max_pool2d_backward(dy, out.indices, {2, 3, 11}); },
                              "max_pool2d_backward"));
  // Indices outside the plane would write out of bounds.
  const Tensor bad = Tensor::from_vector_i32({1, 1, 1, 1}, {4});
  EXPECT_TRUE(throws_op_error([&] { ops::max_pool2d_backward(randn({1, 1, 1, 1}, 3), bad, {1, 1, 2, 2}); },
                              "max_pool2d_backward"));
}

// Average pooling (no padding): BoTNet's 2 x 2 / 2 after strided self-attention, odd maps
// (the last row/column dropped, floor rounding), overlapping and asymmetric windows.
class AvgPoolOp : public ::testing::TestWithParam<PoolCase> {};

TEST_P(AvgPoolOp, ForwardAndBackwardMatchReference) {
  const PoolCase c = GetParam();
  const ref::Pool2dShape s = c.ref();
  const Tensor x = randn(c.in_shape(), 4);
  const Tensor y = ops::avg_pool2d(x, c.kh, c.kw, c.sh, c.sw);
  ASSERT_EQ(y.shape(), (Shape{c.B, c.C, s.OH(), s.OW()}));
  std::vector<double> yr(y.numel());
  const std::vector<double> xd = to_double(x);
  ref::avg_pool2d_forward(yr.data(), xd.data(), s);
  EXPECT_TRUE(all_close(y, yr, f32_tol(c.kh * c.kw), "y"));
  const Tensor dy = randn(y.shape(), 5);
  const Tensor dx = ops::avg_pool2d_backward(dy, x.shape(), c.kh, c.kw, c.sh, c.sw);
  std::vector<double> dxr(x.numel());
  const std::vector<double> dyd = to_double(dy);
  ref::avg_pool2d_backward(dxr.data(), dyd.data(), s);
  EXPECT_TRUE(all_close(dx, dxr, f32_tol(c.kh * c.kw), "dx"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, AvgPoolOp,
                         ::testing::Values(PoolCase{2, 3, 8, 12, 2, 2, 2, 2, 0, 0},   // BoTNet
                                           PoolCase{1, 2, 7, 5, 2, 2, 2, 2, 0, 0},    // odd: floor
                                           PoolCase{2, 2, 6, 7, 3, 3, 1, 1, 0, 0},    // overlapping
                                           PoolCase{1, 3, 9, 8, 3, 2, 2, 3, 0, 0},    // asymmetric
                                           PoolCase{4, 16, 32, 32, 2, 2, 2, 2, 0, 0}));  // threaded

TEST(AvgPoolOp, WindowMeansAndErrors) {
  const Tensor x = Tensor::from_vector({1, 1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  EXPECT_EQ(ops::avg_pool2d(x, 2, 2, 2, 2).to_vector(), (std::vector<float>{3.5f, 5.5f}));
  EXPECT_TRUE(throws_op_error([&] { ops::avg_pool2d(x, 3, 3, 1, 1); }, "avg_pool2d"));  // window > map
  EXPECT_TRUE(throws_op_error([&] { ops::avg_pool2d(x, 2, 2, 0, 2); }, "avg_pool2d"));
  EXPECT_TRUE(throws_op_error([&] { ops::avg_pool2d(randn({2, 4, 4}, 1), 2, 2, 2, 2); }, "avg_pool2d"));
  EXPECT_TRUE(throws_op_error([&] { ops::avg_pool2d_backward(randn({1, 1, 2, 2}, 1), {1, 1, 2, 4}, 2, 2, 2, 2); },
                              "avg_pool2d_backward"));
}

}  // namespace
}  // namespace perceiver
