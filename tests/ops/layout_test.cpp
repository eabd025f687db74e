// ops::channels_last_tokens and its backward against the reference permutation (exact: pure data
// movement) for NCHW maps, rank 3 and rank 5, tiles with ragged edges; shape errors.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/reference/layout.h"
#include "ops/op_test_util.h"
#include "perceiver/ops/layout.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::randn;
using testing::throws_op_error;
using testing::to_double;

int64_t spatial(const Shape& s) { return shape_numel(s) / (s[0] * s[1]); }

class LayoutOp : public ::testing::TestWithParam<Shape> {};

TEST_P(LayoutOp, ChannelsLastTokensMatchesReference) {
  const Shape shape = GetParam();
  const int64_t B = shape[0], C = shape[1], S = spatial(shape);
  const Tensor x = randn(shape, 1);
  const Tensor y = ops::channels_last_tokens(x);
  ASSERT_EQ(y.shape(), (Shape{B, S, C}));
  std::vector<double> ref(x.numel());
  const std::vector<double> xd = to_double(x);
  ref::channels_last_tokens(ref.data(), xd.data(), B, C, S);
  EXPECT_TRUE(all_close(y, ref, 0.0, "y"));
}

TEST_P(LayoutOp, BackwardMatchesReference) {
  const Shape shape = GetParam();
  const int64_t B = shape[0], C = shape[1], S = spatial(shape);
  const Tensor dy = randn({B, S, C}, 2);
  const Tensor dx = ops::channels_last_tokens_backward(dy, shape);
  ASSERT_EQ(dx.shape(), shape);
  std::vector<double> ref(dy.numel());
  const std::vector<double> dyd = to_double(dy);
  ref::channels_last_tokens_backward(ref.data(), dyd.data(), B, C, S);
  EXPECT_TRUE(all_close(dx, ref, 0.0, "dx"));
  // Round trip.
  EXPECT_EQ(ops::channels_last_tokens(dx).to_vector(), dy.to_vector());
}

INSTANTIATE_TEST_SUITE_P(Shapes, LayoutOp,
                         ::testing::Values(Shape{1, 1, 1, 1}, Shape{2, 3, 5, 7}, Shape{2, 8, 5, 7},
                                           Shape{3, 33, 40}, Shape{2, 5, 3, 4, 6},
                                           Shape{2, 64, 55, 55}));

TEST(LayoutOp, MatchesHfPermuteReshape) {
  // y[b, h * W + w, c] == x[b, c, h, w]  (x.permute(0, 2, 3, 1).reshape(B, -1, C))
  const int64_t B = 2, C = 3, H = 4, W = 5;
  const Tensor x = randn({B, C, H, W}, 3);
  const std::vector<float> xv = x.to_vector(), yv = ops::channels_last_tokens(x).to_vector();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          ASSERT_EQ(yv[(b * H * W + h * W + w) * C + c], xv[((b * C + c) * H + h) * W + w]);
}

TEST(LayoutOp, RejectsBadInputs) {
  EXPECT_TRUE(throws_op_error([] { ops::channels_last_tokens(randn({2, 3}, 1)); }, "channels_last_tokens"));
  EXPECT_TRUE(throws_op_error([] { ops::channels_last_tokens(Tensor::zeros({2, 3, 4}, DType::kI32)); },
                              "channels_last_tokens"));
  EXPECT_TRUE(throws_op_error([] { ops::channels_last_tokens(Tensor()); }, "channels_last_tokens"));
  EXPECT_TRUE(throws_op_error([] { ops::channels_last_tokens_backward(randn({2, 20, 4}, 1), {2, 3, 4, 5}); },
                              "channels_last_tokens_backward"));
  EXPECT_TRUE(throws_op_error([] { ops::channels_last_tokens_backward(randn({2, 3}, 1), {2, 3}); },
                              "channels_last_tokens_backward"));
}

}  // namespace
}  // namespace perceiver
