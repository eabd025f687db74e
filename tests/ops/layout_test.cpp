// ops::channels_last_tokens and its backward against the reference permutation (exact: pure data
// movement) for NCHW maps, rank 3 and rank 5, tiles with ragged edges; ops::image_patches and its
// backward against the reference gather / scatter on odd shapes and patch sizes; shape errors.
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

struct PatchCase {
  Shape shape;  // (B, H, W, C)
  int k;
};

class ImagePatchesOp : public ::testing::TestWithParam<PatchCase> {};

TEST_P(ImagePatchesOp, MatchesReference) {
  const auto [shape, k] = GetParam();
  const int64_t B = shape[0], H = shape[1], W = shape[2], C = shape[3];
  const Tensor x = randn(shape, 4);
  const Tensor y = ops::image_patches(x, k);
  ASSERT_EQ(y.shape(), (Shape{B, H, W, k * k * C}));
  std::vector<double> ref(y.numel());
  const std::vector<double> xd = to_double(x);
  ref::image_patches(ref.data(), xd.data(), B, H, W, C, k);
  EXPECT_TRUE(all_close(y, ref, 0.0, "y"));
}

TEST_P(ImagePatchesOp, BackwardMatchesReference) {
  const auto [shape, k] = GetParam();
  const int64_t B = shape[0], H = shape[1], W = shape[2], C = shape[3];
  const Tensor dy = randn({B, H, W, k * k * C}, 5);
  const Tensor dx = ops::image_patches_backward(dy, shape, k);
  ASSERT_EQ(dx.shape(), shape);
  std::vector<double> ref(dx.numel());
  const std::vector<double> dyd = to_double(dy);
  ref::image_patches_backward(ref.data(), dyd.data(), B, H, W, C, k);
  // sums of at most k*k terms, in a different order than the reference
  EXPECT_TRUE(all_close(dx, ref, testing::f32_tol(k * k), "dx"));
}

// {B, H, W, C}, k: a single pixel, k wider than the image, rectangular, several channels, and a
// batch large enough to split across threads
INSTANTIATE_TEST_SUITE_P(Shapes, ImagePatchesOp,
                         ::testing::Values(PatchCase{{1, 1, 1, 1}, 3}, PatchCase{{2, 5, 7, 1}, 1},
                                           PatchCase{{2, 5, 7, 1}, 3}, PatchCase{{3, 4, 3, 2}, 5},
                                           PatchCase{{1, 6, 9, 3}, 7}, PatchCase{{64, 28, 28, 1}, 3}));

TEST(ImagePatchesOp, IsThePixelsNeighbourhood) {
  // x[0, i, j, 0] = 10 i + j on a 3 x 4 image: the centre pixel's 3 x 3 patch is its neighbours
  // in row-major order, zeros where they fall outside
  std::vector<float> v;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j) v.push_back(static_cast<float>(10 * i + j));
  const Tensor x = Tensor::from_vector({1, 3, 4, 1}, v);
  const std::vector<float> y = ops::image_patches(x, 3).to_vector();
  const float* at_1_1 = y.data() + (1 * 4 + 1) * 9;
  EXPECT_EQ(std::vector<float>(at_1_1, at_1_1 + 9), (std::vector<float>{0, 1, 2, 10, 11, 12, 20, 21, 22}));
  const float* at_0_3 = y.data() + 3 * 9;  // the top-right corner
  EXPECT_EQ(std::vector<float>(at_0_3, at_0_3 + 9), (std::vector<float>{0, 0, 0, 2, 3, 0, 12, 13, 0}));
}

TEST(ImagePatchesOp, RejectsBadInputs) {
  EXPECT_TRUE(throws_op_error([] { ops::image_patches(randn({2, 3, 4}, 1), 3); }, "image_patches"));
  EXPECT_TRUE(throws_op_error([] { ops::image_patches(randn({1, 3, 4, 1}, 1), 2); }, "image_patches"));
  EXPECT_TRUE(throws_op_error([] { ops::image_patches(randn({1, 3, 4, 1}, 1), 0); }, "image_patches"));
  EXPECT_TRUE(throws_op_error([] { ops::image_patches(Tensor::zeros({1, 3, 4, 1}, DType::kI32), 3); },
                              "image_patches"));
  EXPECT_TRUE(throws_op_error([] { ops::image_patches_backward(randn({1, 3, 4, 8}, 1), {1, 3, 4, 1}, 3); },
                              "image_patches_backward"));
  EXPECT_TRUE(throws_op_error([] { ops::image_patches_backward(randn({1, 3, 4, 9}, 1), {1, 3, 4}, 3); },
                              "image_patches_backward"));
}

}  // namespace
}  // namespace perceiver
