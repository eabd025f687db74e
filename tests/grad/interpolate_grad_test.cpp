// ops::interpolate_bicubic_backward against central finite differences of the double reference
// forward (the resampling is linear, so this checks the transpose exactly), and the autograd
// functions (ag::interpolate_bicubic, ag::tokens_to_channels_first) through the tape.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/reference/interpolate.h"
#include "ops/op_test_util.h"
#include "perceiver/autograd/functions_conv.h"
#include "perceiver/autograd/functions_interpolate.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/ops/interpolate.h"
#include "perceiver/ops/layout.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::fd_grad;
using testing::randn;
using testing::to_double;

class BicubicGrad : public ::testing::TestWithParam<ref::ResampleShape> {};

TEST_P(BicubicGrad, MatchesFiniteDifferences) {
  const ref::ResampleShape s = GetParam();
  const Tensor x = randn({1, s.planes, s.H, s.W}, 61);
  const Tensor dy = randn({1, s.planes, s.OH, s.OW}, 62);
  const Tensor dx = ops::interpolate_bicubic_backward(dy, x.shape(), s.align_corners);
  const auto xd = to_double(x), dyd = to_double(dy);
  const auto ndx = fd_grad(
      [&](const std::vector<double>& v) {
        std::vector<double> y(dyd.size());
        ref::bicubic_forward(y.data(), v.data(), s);
        return y;
      },
      xd, dyd);
  EXPECT_TRUE(all_close(dx, ndx, 4 * f32_tol(16.0 * (s.OH / s.H + 1) * (s.OW / s.W + 1)), "dx"));
}

// {planes, H, W, OH, OW, align_corners}
INSTANTIATE_TEST_SUITE_P(Shapes, BicubicGrad,
                         ::testing::Values(ref::ResampleShape{3, 4, 4, 6, 6, false},
                                           ref::ResampleShape{2, 3, 5, 7, 2, false},
                                           ref::ResampleShape{2, 8, 6, 3, 4, false},
                                           ref::ResampleShape{1, 1, 4, 3, 9, false},
                                           ref::ResampleShape{2, 4, 5, 6, 3, true}));

TEST(BicubicGrad, AutogradMatchesBackwardOp) {
  Tensor x = randn({2, 3, 4, 5}, 63);
  x.set_requires_grad(true);
  const Tensor y = ag::interpolate_bicubic(x, 7, 3);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 7, 3}));
  const Tensor dy = randn(y.shape(), 64);
  autograd::backward(y, dy);
  EXPECT_EQ(x.grad().to_vector(), ops::interpolate_bicubic_backward(dy, x.shape()).to_vector());
}

TEST(BicubicGrad, TokensToChannelsFirstRoundTrip) {
  Tensor t = randn({2, 12, 5}, 65);  // (B, h*w, C) with h = 3, w = 4
  t.set_requires_grad(true);
  const Tensor m = ag::tokens_to_channels_first(t, 3, 4);
  ASSERT_EQ(m.shape(), (Shape{2, 5, 3, 4}));
  // m[b, c, i, j] = t[b, i * 4 + j, c]
  EXPECT_EQ(m.f32()[((1 * 5 + 2) * 3 + 1) * 4 + 3], t.f32()[(1 * 12 + 1 * 4 + 3) * 5 + 2]);
  const Tensor back = ag::channels_last_tokens(m);
  EXPECT_EQ(back.to_vector(), t.to_vector());
  const Tensor dy = randn(m.shape(), 66);
  autograd::backward(m, dy);
  EXPECT_EQ(t.grad().to_vector(), ops::channels_last_tokens(dy).to_vector());
}

}  // namespace
}  // namespace perceiver
