// ops::channels_last_tokens_backward against central finite differences of the reference
// permutation; ag::channels_last_tokens through the tape.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/reference/layout.h"
#include "ops/op_test_util.h"
#include "perceiver/autograd/functions_conv.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/ops/layout.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::fd_grad;
using testing::randn;
using testing::to_double;

TEST(LayoutGrad, ChannelsLastTokensMatchesFiniteDifferences) {
  const int64_t B = 2, C = 3, H = 5, W = 7, S = H * W;
  const Tensor x = randn({B, C, H, W}, 61), dy = randn({B, S, C}, 62);
  const Tensor dx = ops::channels_last_tokens_backward(dy, x.shape());
  const auto ndx = fd_grad(
      [&](const std::vector<double>& v) {
        std::vector<double> y(v.size());
        ref::channels_last_tokens(y.data(), v.data(), B, C, S);
        return y;
      },
      to_double(x), to_double(dy));
  EXPECT_TRUE(all_close(dx, ndx, 4 * f32_tol(1), "dx"));
}

TEST(LayoutGrad, AutogradMatchesBackwardOp) {
  Tensor x = randn({2, 4, 5, 7}, 63);
  x.set_requires_grad(true);
  const Tensor y = ag::channels_last_tokens(x);
  ASSERT_EQ(y.shape(), (Shape{2, 35, 4}));
  const Tensor dy = randn(y.shape(), 64);
  autograd::backward(y, dy);
  EXPECT_EQ(x.grad().to_vector(), ops::channels_last_tokens_backward(dy, x.shape()).to_vector());
}

}  // namespace
}  // namespace perceiver
