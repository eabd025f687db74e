// ops::interpolate_bicubic and its backward against the double reference (upsampling,
// downsampling, non-square, 1 <-> n samples, align_corners both ways), PyTorch's known values
// for a hand-computed case, identity at the same size, and shape errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <vector>

#include "kernels/reference/interpolate.h"
#include "ops/op_test_util.h"
#include "perceiver/ops/interpolate.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::randn;
using testing::throws_op_error;
using testing::to_double;

struct ResampleCase {
  int64_t B, C, H, W, OH, OW;
  bool align_corners;
  ref::ResampleShape ref() const { return {B * C, H, W, OH, OW, align_corners}; }
};

std::ostream& operator<<(std::ostream& os, const ResampleCase& c) {
  return os << "x[" << c.B << "," << c.C << "," << c.H << "," << c.W << "] -> (" << c.OH << ","
            << c.OW << ")" << (c.align_corners ? " align_corners" : "");
}

class BicubicOp : public ::testing::TestWithParam<ResampleCase> {};

TEST_P(BicubicOp, ForwardMatchesReference) {
  const ResampleCase c = GetParam();
  const Tensor x = randn({c.B, c.C, c.H, c.W}, 1);
  const Tensor y = ops::interpolate_bicubic(x, c.OH, c.OW, c.align_corners);
  ASSERT_EQ(y.shape(), (Shape{c.B, c.C, c.OH, c.OW}));
  std::vector<double> ref(y.numel());
  const std::vector<double> xd = to_double(x);
  ref::bicubic_forward(ref.data(), xd.data(), c.ref());
  // Like torch, the kernel computes source coordinates in float: their rounding (about
  // eps * max(H, W)) moves the weights, on top of the 16-term sums.
  EXPECT_TRUE(all_close(y, ref, f32_tol(16.0 * std::max(c.H, c.W)), "y"));
}

TEST_P(BicubicOp, BackwardMatchesReference) {
  const ResampleCase c = GetParam();
  const Shape xs{c.B, c.C, c.H, c.W};
  const Tensor dy = randn({c.B, c.C, c.OH, c.OW}, 2);
  const Tensor dx = ops::interpolate_bicubic_backward(dy, xs, c.align_corners);
  ASSERT_EQ(dx.shape(), xs);
  std::vector<double> ref(dx.numel());
  const std::vector<double> dyd = to_double(dy);
  ref::bicubic_backward(ref.data(), dyd.data(), c.ref());
  // Each input collects up to 16 * ceil(O / I)^2 contributions.
  const double fan = 16.0 * (c.OH / c.H + 1) * (c.OW / c.W + 1);
  EXPECT_TRUE(all_close(dx, ref, f32_tol(fan), "dx"));
}

// {B, C, H, W, OH, OW, align_corners}
INSTANTIATE_TEST_SUITE_P(Shapes, BicubicOp,
                         ::testing::Values(ResampleCase{1, 8, 4, 4, 6, 6, false},     // ViT 4x4 -> 6x6
                                           ResampleCase{2, 3, 14, 14, 24, 24, false},  // 224 -> 384 grids
                                           ResampleCase{1, 5, 4, 4, 3, 7, false},      // non-square output
                                           ResampleCase{1, 4, 3, 5, 7, 2, false},      // non-square input
                                           ResampleCase{2, 2, 9, 11, 4, 5, false},     // downsampling
                                           ResampleCase{1, 3, 1, 5, 4, 1, false},      // 1 <-> n samples
                                           ResampleCase{1, 3, 5, 6, 8, 3, true},       // align_corners
                                           ResampleCase{1, 2, 4, 6, 1, 1, true},       // single output
                                           ResampleCase{4, 64, 16, 16, 20, 12, false}));  // threaded

// PyTorch: F.interpolate([[[[0., 1.]]]], size=(1, 4), mode="bicubic") = [-0.10546875, 0.2265625,
// 0.7734375, 1.10546875]. By hand: output 0 samples src = 0.5 * 0.5 - 0.5 = -0.25, base -1,
// t = 0.75, taps (0, 0, 0, 1) after clamping, weight of x[1] = k(2 - 0.75) = -0.10546875; output 1
// samples 0.25: t = 0.25, taps (0, 0, 1, 1), weights k(0.75) + k(1.75) = 0.26171875 - 0.03515625.
// The kernel is separable and reproduces affine data, so on the 2x2 map [[0, 1], [2, 3]]
// (value = col + 2 row) the 4x4 output is v[j] + 2 v[i].
TEST(BicubicOp, HandComputedUpsampling) {
  const std::vector<float> v = {-0.10546875f, 0.2265625f, 0.7734375f, 1.10546875f};
  const Tensor row = ops::interpolate_bicubic(Tensor::from_vector({1, 1, 1, 2}, {0, 1}), 1, 4);
  EXPECT_EQ(row.to_vector(), v);
  const Tensor grid = ops::interpolate_bicubic(Tensor::from_vector({1, 1, 2, 2}, {0, 1, 2, 3}), 4, 4);
  const std::vector<float> y = grid.to_vector();
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) EXPECT_FLOAT_EQ(y[i * 4 + j], v[j] + 2 * v[i]) << i << "," << j;
  // Non-square 2x2 -> 1x4: the one output row samples src 0.5 (t = 0.5, taps (0, 0, 1, 1),
  // weights k(1.5) + k(0.5) = -0.09375 + 0.59375 = 0.5 per row): the row mean, 1 + v[j].
  const Tensor ns = ops::interpolate_bicubic(Tensor::from_vector({1, 1, 2, 2}, {0, 1, 2, 3}), 1, 4);
  const std::vector<float> n = ns.to_vector();
  for (int j = 0; j < 4; ++j) EXPECT_FLOAT_EQ(n[j], 1.0f + v[j]) << j;
}

TEST(BicubicOp, SameSizeIsIdentity) {
  const Tensor x = randn({2, 3, 5, 7}, 3);
  for (bool ac : {false, true}) {
    EXPECT_EQ(ops::interpolate_bicubic(x, 5, 7, ac).to_vector(), x.to_vector());
    EXPECT_EQ(ops::interpolate_bicubic_backward(x, x.shape(), ac).to_vector(), x.to_vector());
  }
}

TEST(BicubicOp, ConstantMapsStayConstant) {
  // Weights sum to 1 for every output, also where taps clamp at the border.
  const Tensor y = ops::interpolate_bicubic(Tensor::full({1, 2, 3, 4}, 2.5f), 7, 5);
  for (float v : y.to_vector()) EXPECT_NEAR(v, 2.5f, 1e-5f);  // float weights sum to 1 within a few ulps
}

TEST(BicubicOp, RejectsBadShapes) {
  const Tensor x = randn({1, 2, 3, 4}, 4);
  EXPECT_TRUE(throws_op_error([&] { ops::interpolate_bicubic(randn({2, 3, 4}, 5), 2, 2); }, "interpolate_bicubic"));
  EXPECT_TRUE(throws_op_error([&] { ops::interpolate_bicubic(x, 0, 2); }, "interpolate_bicubic"));
  EXPECT_TRUE(throws_op_error([&] { ops::interpolate_bicubic(Tensor::zeros({1, 1, 2, 2}, DType::kI32), 3, 3); },
                              "interpolate_bicubic"));
  EXPECT_TRUE(throws_op_error([&] { ops::interpolate_bicubic_backward(randn({1, 2, 5, 5}, 6), {1, 3, 3, 4}); },
                              "interpolate_bicubic_backward"));
  EXPECT_TRUE(throws_op_error([&] { ops::interpolate_bicubic_backward(randn({1, 2, 5}, 6), {1, 2, 3, 4}); },
                              "interpolate_bicubic_backward"));
}

}  // namespace
}  // namespace perceiver
