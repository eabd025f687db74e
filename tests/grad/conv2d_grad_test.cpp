// ops::conv2d_backward against central finite differences of the double reference forward, for
// x, w and b (f = sum_i dy_i * ref_conv2d(x, w, b)_i); ag::conv2d routes the same gradients
// through the tape.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/reference/conv2d.h"
#include "ops/op_test_util.h"
#include "perceiver/autograd/functions_conv.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/ops/conv2d.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::fd_grad;
using testing::randn;
using testing::to_double;

class Conv2dGrad : public ::testing::TestWithParam<ref::Conv2dShape> {};

TEST_P(Conv2dGrad, MatchesFiniteDifferences) {
  const ref::Conv2dShape s = GetParam();
  const Tensor x = randn({s.B, s.Cin, s.H, s.W}, 31), w = randn({s.Cout, s.Cin, s.kh, s.kw}, 32);
  const Tensor b = randn({s.Cout}, 33), dy = randn({s.B, s.Cout, s.OH(), s.OW()}, 34);
  const ops::Conv2dGrads g = ops::conv2d_backward(dy, x, w, s.sh, s.sw, s.ph, s.pw, true, true, true);

  const auto xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy);
  auto fwd = [&](const std::vector<double>& xv, const std::vector<double>& wv,
                 const std::vector<double>& bv) {
    std::vector<double> y(dyd.size());
    ref::conv2d_forward(y.data(), xv.data(), wv.data(), bv.data(), s);
    return y;
  };
  const auto ndx = fd_grad([&](const std::vector<double>& v) { return fwd(v, wd, bd); }, xd, dyd);
  const auto ndw = fd_grad([&](const std::vector<double>& v) { return fwd(xd, v, bd); }, wd, dyd);
  const auto ndb = fd_grad([&](const std::vector<double>& v) { return fwd(xd, wd, v); }, bd, dyd);
  const int64_t P = s.OH() * s.OW();
  EXPECT_TRUE(all_close(g.dx, ndx, 4 * f32_tol(s.Cout * s.kh * s.kw), "dx"));
  EXPECT_TRUE(all_close(g.dw, ndw, 4 * f32_tol(s.B * P), "dw"));
  EXPECT_TRUE(all_close(g.db, ndb, 4 * f32_tol(s.B * P), "db"));
}

// {B, Cin, H, W, Cout, kh, kw, sh, sw, ph, pw}: HF stem on an odd image, patchify, 1x1 stride 2,
// asymmetric with padding.
INSTANTIATE_TEST_SUITE_P(Shapes, Conv2dGrad,
                         ::testing::Values(ref::Conv2dShape{2, 3, 11, 13, 4, 7, 7, 2, 2, 3, 3},
                                           ref::Conv2dShape{2, 3, 9, 8, 5, 4, 4, 4, 4, 0, 0},
                                           ref::Conv2dShape{3, 4, 5, 7, 3, 1, 1, 2, 2, 0, 0},
                                           ref::Conv2dShape{1, 2, 6, 7, 3, 3, 2, 1, 2, 1, 1}));

TEST(Conv2dGrad, AutogradMatchesBackwardOp) {
  Tensor x = randn({2, 3, 11, 13}, 41), w = randn({4, 3, 7, 7}, 42), b = randn({4}, 43);
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  b.set_requires_grad(true);
  const Tensor y = ag::conv2d(x, w, b, 2, 2, 3, 3);
  ASSERT_TRUE(y.requires_grad());
  const Tensor dy = randn(y.shape(), 44);
  autograd::backward(y, dy);
  const ops::Conv2dGrads g = ops::conv2d_backward(dy, x, w, 2, 2, 3, 3, true, true, true);
  EXPECT_EQ(x.grad().to_vector(), g.dx.to_vector());
  EXPECT_EQ(w.grad().to_vector(), g.dw.to_vector());
  EXPECT_EQ(b.grad().to_vector(), g.db.to_vector());
}

TEST(Conv2dGrad, AutogradWithoutBiasOrInputGrad) {
  const Tensor x = randn({1, 2, 6, 6}, 45);
  Tensor w = randn({3, 2, 3, 3}, 46);
  w.set_requires_grad(true);
  const Tensor y = ag::conv2d(x, w, Tensor(), 1, 1, 1, 1);
  const Tensor dy = randn(y.shape(), 47);
  autograd::backward(y, dy);
  EXPECT_FALSE(x.grad().defined());
  EXPECT_EQ(w.grad().to_vector(),
            ops::conv2d_backward(dy, x, w, 1, 1, 1, 1, false, true, false).dw.to_vector());
}

}  // namespace
}  // namespace perceiver
