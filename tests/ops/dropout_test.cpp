// ops::dropout forward against the double reference y = x * mask, mask values, p == 0 identity,
// and p / dtype errors; ops::drop_path (whole examples) the same way, with its drop rate.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/reference/dropout.h"
#include "ops/op_test_util.h"
#include "perceiver/ops/dropout.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::randn;
using testing::throws_op_error;
using testing::to_double;

class DropoutOp : public ::testing::TestWithParam<Shape> {};

TEST_P(DropoutOp, OutputIsInputTimesMask) {
  const Shape shape = GetParam();
  const float p = 0.3f;
  Tensor x = randn(shape, 161);
  Rng rng(7);
  ops::DropoutOut out = ops::dropout(x, p, rng);
  ASSERT_EQ(out.y.shape(), shape);
  ASSERT_EQ(out.mask.shape(), shape);
  const std::vector<double> xd = to_double(x), md = to_double(out.mask);
  std::vector<double> y(xd.size());
  ref::dropout_forward(y.data(), xd.data(), md.data(), x.numel());
  EXPECT_TRUE(all_close(out.y, y, testing::f32_tol(1), "y"));
  const float keep = 1.0f / (1.0f - p);
  for (float m : out.mask.to_vector()) ASSERT_TRUE(m == 0.0f || m == keep) << m;
}

INSTANTIATE_TEST_SUITE_P(Shapes, DropoutOp,
                         ::testing::Values(Shape{1, 1}, Shape{3, 7}, Shape{5, 17, 33},
                                           Shape{2, 3, 129}, Shape{3, 70001}));

TEST(DropoutOp, ZeroProbabilityIsIdentity) {
  Tensor x = randn({3, 7}, 162);
  Rng rng(1);
  const uint64_t before = rng.state();
  ops::DropoutOut out = ops::dropout(x, 0.0f, rng);
  EXPECT_TRUE(out.y.same_storage(x));
  EXPECT_FALSE(out.mask.defined());
  EXPECT_EQ(rng.state(), before);
}

TEST(DropoutOp, RejectsBadInputs) {
  Rng rng(1);
  Tensor x = randn({3, 7}, 1);
  EXPECT_TRUE(throws_op_error([&] { ops::dropout(x, 1.0f, rng); }, "dropout"));
  EXPECT_TRUE(throws_op_error([&] { ops::dropout(x, -0.1f, rng); }, "dropout"));
  EXPECT_TRUE(throws_op_error([&] { ops::dropout(Tensor::zeros({3}, DType::kI32), 0.5f, rng); }, "dropout"));
}

class DropPathOp : public ::testing::TestWithParam<Shape> {};

TEST_P(DropPathOp, EachExampleIsKeptAndScaledOrZeroed) {
  const Shape shape = GetParam();
  const float p = 0.4f;
  Tensor x = randn(shape, 163);
  Rng rng(9);
  ops::DropPathOut out = ops::drop_path(x, p, rng);
  ASSERT_EQ(out.y.shape(), shape);
  ASSERT_EQ(out.keep.shape(), Shape{shape[0]});
  const int64_t rows = shape[0], row_len = x.numel() / rows;
  const std::vector<double> xd = to_double(x), kd = to_double(out.keep);
  std::vector<double> y(xd.size());
  ref::drop_path_forward(y.data(), xd.data(), kd.data(), rows, row_len);
  EXPECT_TRUE(all_close(out.y, y, testing::f32_tol(1), "y"));
  const float keep = 1.0f / (1.0f - p);
  for (float k : out.keep.to_vector()) ASSERT_TRUE(k == 0.0f || k == keep) << k;
  // backward scales dy the same way
  Tensor dy = randn(shape, 164);
  const std::vector<double> dyd = to_double(dy);
  std::vector<double> dx(dyd.size());
  ref::drop_path_backward(dx.data(), dyd.data(), kd.data(), rows, row_len);
  EXPECT_TRUE(all_close(ops::drop_path_backward(dy, out.keep), dx, testing::f32_tol(1), "dx"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, DropPathOp,
                         ::testing::Values(Shape{1}, Shape{7}, Shape{3, 7}, Shape{37, 5, 3}, Shape{5, 17, 33},
                                           Shape{3, 70001}));

TEST(DropPathOp, DropsWholeExamplesAtRateP) {
  const int64_t rows = 1 << 16;
  Tensor x = Tensor::full({rows, 3}, 1.0f);
  for (float p : {0.1f, 0.5f}) {
    Rng rng(12);
    ops::DropPathOut out = ops::drop_path(x, p, rng);
    const std::vector<float> y = out.y.to_vector();
    int64_t dropped = 0;
    for (int64_t r = 0; r < rows; ++r) {
      ASSERT_TRUE(y[r * 3] == y[r * 3 + 1] && y[r * 3] == y[r * 3 + 2]) << "example " << r << " split";
      dropped += y[r * 3] == 0.0f;
    }
    // binomial standard deviation sqrt(rows p (1 - p)); 5 sigma
    EXPECT_NEAR(static_cast<double>(dropped) / rows, p, 5 * std::sqrt(p * (1 - p) / rows)) << "p=" << p;
  }
}

TEST(DropPathOp, ZeroProbabilityIsIdentityAndSeedsRepeat) {
  Tensor x = randn({6, 5}, 165);
  Rng rng(1);
  const uint64_t before = rng.state();
  ops::DropPathOut out = ops::drop_path(x, 0.0f, rng);
  EXPECT_TRUE(out.y.same_storage(x));
  EXPECT_FALSE(out.keep.defined());
  EXPECT_EQ(rng.state(), before);
  Tensor big = randn({4096, 2}, 166);
  Rng a(42), b(42), c(43);
  const std::vector<float> ka = ops::drop_path(big, 0.5f, a).keep.to_vector();
  EXPECT_EQ(ka, ops::drop_path(big, 0.5f, b).keep.to_vector());
  EXPECT_NE(ka, ops::drop_path(big, 0.5f, c).keep.to_vector());
}

TEST(DropPathOp, RejectsBadInputs) {
  Rng rng(1);
  Tensor x = randn({3, 7}, 1);
  EXPECT_TRUE(throws_op_error([&] { ops::drop_path(x, 1.0f, rng); }, "drop_path"));
  EXPECT_TRUE(throws_op_error([&] { ops::drop_path(x, -0.1f, rng); }, "drop_path"));
  EXPECT_TRUE(throws_op_error([&] { ops::drop_path(Tensor::full({}, 1.0f), 0.5f, rng); }, "drop_path"));
  EXPECT_TRUE(throws_op_error([&] { ops::drop_path(Tensor::zeros({3}, DType::kI32), 0.5f, rng); }, "drop_path"));
  EXPECT_TRUE(throws_op_error([&] { ops::drop_path_backward(x, Tensor::full({4}, 1.0f)); }, "drop_path_backward"));
}

}  // namespace
}  // namespace perceiver
