// ops::channels_last_tokens_backward and ops::image_patches_backward against central finite
// differences of the reference forwards; both through the tape.
#include <gtest/gtest.h>

#include <string>
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

TEST(LayoutGrad, ImagePatchesMatchesFiniteDifferences) {
  for (int k : {3, 5}) {
    const int64_t B = 2, H = 4, W = 5, C = 2;
    const Tensor x = randn({B, H, W, C}, 65), dy = randn({B, H, W, k * k * C}, 66);
    const Tensor dx = ops::image_patches_backward(dy, x.shape(), k);
    const auto ndx = fd_grad(
        [&](const std::vector<double>& v) {
          std::vector<double> y(static_cast<size_t>(B * H * W * k * k * C));
          ref::image_patches(y.data(), v.data(), B, H, W, C, k);
          return y;
        },
        to_double(x), to_double(dy));
    EXPECT_TRUE(all_close(dx, ndx, 4 * f32_tol(k * k), "dx (k " + std::to_string(k) + ")"));
  }
}

TEST(LayoutGrad, ImagePatchesAutogradMatchesBackwardOp) {
  Tensor x = randn({2, 6, 5, 1}, 67);
  x.set_requires_grad(true);
  const Tensor y = ag::image_patches(x, 3);
  ASSERT_EQ(y.shape(), (Shape{2, 6, 5, 9}));
  const Tensor dy = randn(y.shape(), 68);
  autograd::backward(y, dy);
  EXPECT_EQ(x.grad().to_vector(), ops::image_patches_backward(dy, x.shape(), 3).to_vector());
}

}  // namespace
}  // namespace perceiver
