// ops::max_pool2d_backward against central finite differences of the double reference forward
// (random data has no ties, so the max is locally linear); ag::max_pool2d through the tape.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/reference/pooling.h"
#include "ops/op_test_util.h"
#include "perceiver/autograd/functions_conv.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/ops/pooling.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::fd_grad;
using testing::randn;
using testing::to_double;

class MaxPoolGrad : public ::testing::TestWithParam<ref::Pool2dShape> {};

TEST_P(MaxPoolGrad, MatchesFiniteDifferences) {
  const ref::Pool2dShape s = GetParam();
  const Tensor x = randn({1, s.planes, s.H, s.W}, 51);
  const ops::MaxPoolOut out = ops::max_pool2d(x, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw);
  const Tensor dy = randn(out.y.shape(), 52);
  const Tensor dx = ops::max_pool2d_backward(dy, out.indices, x.shape());
  const auto xd = to_double(x), dyd = to_double(dy);
  const auto ndx = fd_grad(
      [&](const std::vector<double>& v) {
        std::vector<double> y(dyd.size());
        std::vector<int32_t> idx(dyd.size());
        ref::max_pool2d_forward(y.data(), idx.data(), v.data(), s);
        return y;
      },
      xd, dyd);
  EXPECT_TRUE(all_close(dx, ndx, 4 * f32_tol(s.kh * s.kw), "dx"));
}

// {planes, H, W, kh, kw, sh, sw, ph, pw}
INSTANTIATE_TEST_SUITE_P(Shapes, MaxPoolGrad,
                         ::testing::Values(ref::Pool2dShape{6, 11, 13, 3, 3, 2, 2, 0, 0},
                                           ref::Pool2dShape{2, 12, 16, 3, 3, 2, 2, 0, 0},
                                           ref::Pool2dShape{3, 7, 6, 3, 3, 1, 1, 1, 1},
                                           ref::Pool2dShape{2, 7, 5, 5, 3, 2, 1, 2, 1}));

TEST(MaxPoolGrad, AutogradMatchesBackwardOp) {
  Tensor x = randn({2, 3, 12, 16}, 53);
  x.set_requires_grad(true);
  const Tensor y = ag::max_pool2d(x, 3, 3, 2, 2, 0, 0);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 5, 7}));
  const Tensor dy = randn(y.shape(), 54);
  autograd::backward(y, dy);
  const ops::MaxPoolOut out = ops::max_pool2d(x, 3, 3, 2, 2, 0, 0);
  EXPECT_EQ(x.grad().to_vector(), ops::max_pool2d_backward(dy, out.indices, x.shape()).to_vector());
}

TEST(AvgPoolGrad, MatchesFiniteDifferencesThroughTheTape) {
  const ref::Pool2dShape s{6, 9, 8, 2, 2, 2, 2, 0, 0};
  Tensor x = randn({2, 3, 9, 8}, 55);
  x.set_requires_grad(true);
  const Tensor y = ag::avg_pool2d(x, 2, 2, 2, 2);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 4, 4}));
  const Tensor dy = randn(y.shape(), 56);
  autograd::backward(y, dy);
  const auto xd = to_double(x), dyd = to_double(dy);
  const auto ndx = fd_grad(
      [&](const std::vector<double>& v) {
        std::vector<double> out(dyd.size());
        ref::avg_pool2d_forward(out.data(), v.data(), s);
        return out;
      },
      xd, dyd);
  EXPECT_TRUE(all_close(x.grad(), ndx, 4 * f32_tol(4), "dx"));
}

}  // namespace
}  // namespace perceiver
