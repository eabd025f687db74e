// ops::dropout forward against the double reference y = x * mask, mask values, p == 0 identity,
// and p / dtype errors.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace perceiver
