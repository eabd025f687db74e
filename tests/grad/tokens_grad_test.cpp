// ops::slice_tokens_backward and gather_tokens_backward (repeated indices accumulate) against
// central finite differences of the reference gather; ag::concat_tokens / slice_tokens /
// gather_tokens through the tape.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "kernels/reference/tokens.h"
#include "ops/op_test_util.h"
#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/ops/tokens.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::fd_grad;
using testing::randn;
using testing::to_double;

TEST(TokensGrad, SliceAndGatherBackwardMatchFiniteDifferences) {
  const int64_t B = 2, T = 9, inner = 6;
  const Tensor x = randn({B, T, 2, 3}, 11);
  const std::vector<int64_t> idx = {8, 2, 2, 5, 0, 2};  // repeats must add up
  const Tensor dy_g = randn({B, 6, 2, 3}, 12);
  const auto nd_g = fd_grad([&](const std::vector<double>& v) { return ref::gather_tokens(v, B, T, inner, idx); },
                            to_double(x), to_double(dy_g));
  EXPECT_TRUE(all_close(ops::gather_tokens_backward(dy_g, x.shape(), idx), nd_g, 4 * f32_tol(1), "gather dx"));
  std::vector<int64_t> rows(4);
  std::iota(rows.begin(), rows.end(), 3);
  const Tensor dy_s = randn({B, 4, 2, 3}, 13);
  const auto nd_s = fd_grad([&](const std::vector<double>& v) { return ref::gather_tokens(v, B, T, inner, rows); },
                            to_double(x), to_double(dy_s));
  EXPECT_TRUE(all_close(ops::slice_tokens_backward(dy_s, x.shape(), 3), nd_s, 4 * f32_tol(1), "slice dx"));
}

TEST(TokensGrad, AutogradRoutesEachPiece) {
  Tensor a = randn({2, 3, 4}, 21), b = randn({2, 2, 4}, 22);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  const Tensor y = ag::gather_tokens(ag::slice_tokens(ag::concat_tokens({a, b}), 1, 4), {3, 0});
  ASSERT_EQ(y.shape(), (Shape{2, 2, 4}));  // rows 4 and 1 of the concatenation: b[1] and a[1]
  const Tensor dy = randn(y.shape(), 23);
  autograd::backward(y, dy);
  const std::vector<float> ga = a.grad().to_vector(), gb = b.grad().to_vector(), d = dy.to_vector();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 4; ++c) {
      EXPECT_EQ(ga[(n * 3 + 1) * 4 + c], d[(n * 2 + 1) * 4 + c]);
      EXPECT_EQ(gb[(n * 2 + 1) * 4 + c], d[(n * 2 + 0) * 4 + c]);
      EXPECT_EQ(ga[(n * 3 + 0) * 4 + c], 0.0f);
      EXPECT_EQ(gb[(n * 2 + 0) * 4 + c], 0.0f);
    }
}

}  // namespace
}  // namespace perceiver
