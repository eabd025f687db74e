// Dropout: the backward of ag::dropout, run through the tape, against central finite
// differences of the reference forward with the drawn mask; mask statistics (mean ~ 1,
// zero fraction ~ p) and determinism for a fixed seed; drop path's backward the same way.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/reference/dropout.h"
#include "ops/op_test_util.h"
#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/ops/dropout.h"
#include "perceiver/ops/elementwise.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::fd_grad;
using testing::randn;
using testing::to_double;

TEST(DropoutGrad, BackwardIsDyTimesMask) {
  for (const Shape& shape : {Shape{1, 1}, Shape{3, 7}, Shape{5, 17, 33}, Shape{2, 3, 129}}) {
    Tensor x = randn(shape, 171), w = randn(shape, 172);
    Rng rng(3);
    ops::DropoutOut out = ops::dropout(x, 0.4f, rng);
    const std::vector<double> md = to_double(out.mask);
    const auto num = fd_grad(
        [&](const std::vector<double>& v) {
          std::vector<double> y(v.size());
          ref::dropout_forward(y.data(), v.data(), md.data(), static_cast<int64_t>(v.size()));
          return y;
        },
        to_double(x), to_double(w));
    // the real rule, through the tape: the same seed draws the same mask
    Tensor xt = x.clone();
    xt.set_requires_grad(true);
    Rng rng2(3);
    const int64_t n = x.numel();
    Tensor y = ag::dropout(xt, 0.4f, true, rng2);
    ASSERT_EQ(y.to_vector(), out.y.to_vector()) << "ag::dropout drew another mask";
    Tensor loss = ag::reshape(ag::mean(ag::reshape(ag::mul(y, w), {1, n}), 1), {});
    autograd::backward(loss);
    EXPECT_TRUE(all_close(ops::scale(xt.grad(), static_cast<float>(n)), num, f32_tol(n), "dx " + shape_str(shape)));
  }
}

TEST(DropoutGrad, MaskStatistics) {
  const int64_t n = 1 << 20;
  Tensor x = Tensor::full({n}, 1.0f);
  for (float p : {0.1f, 0.5f, 0.9f}) {
    Rng rng(11);
    ops::DropoutOut out = ops::dropout(x, p, rng);
    double sum = 0;
    int64_t zeros = 0;
    for (float m : out.mask.to_vector()) {
      sum += m;
      zeros += m == 0.0f;
    }
    // Binomial standard deviations: zeros sqrt(n p (1-p)); mean sqrt(p / ((1-p) n)). 5 sigma.
    const double frac = static_cast<double>(zeros) / n;
    EXPECT_NEAR(frac, p, 5 * std::sqrt(p * (1 - p) / n)) << "p=" << p;
    EXPECT_NEAR(sum / n, 1.0, 5 * std::sqrt(p / ((1 - p) * n))) << "p=" << p;
  }
}

TEST(DropoutGrad, DeterministicForFixedSeed) {
  Tensor x = randn({3, 70001}, 173);
  Rng a(42), b(42), c(43);
  const std::vector<float> ma = ops::dropout(x, 0.5f, a).mask.to_vector();
  const std::vector<float> mb = ops::dropout(x, 0.5f, b).mask.to_vector();
  const std::vector<float> mc = ops::dropout(x, 0.5f, c).mask.to_vector();
  EXPECT_EQ(ma, mb);
  EXPECT_NE(ma, mc);
  // The generator advances: a second call with the same Rng draws a different mask.
  EXPECT_NE(ops::dropout(x, 0.5f, a).mask.to_vector(), ma);
}

TEST(DropPathGrad, BackwardIsDyTimesTheExamplesKeep) {
  for (const Shape& shape : {Shape{1, 1}, Shape{7, 3}, Shape{9, 17, 5}, Shape{4, 3, 129}}) {
    Tensor x = randn(shape, 174), w = randn(shape, 175);
    Rng rng(5);
    ops::DropPathOut out = ops::drop_path(x, 0.4f, rng);
    const std::vector<double> kd = to_double(out.keep);
    const int64_t n = x.numel(), rows = shape[0];
    const auto num = fd_grad(
        [&](const std::vector<double>& v) {
          std::vector<double> y(v.size());
          ref::drop_path_forward(y.data(), v.data(), kd.data(), rows, n / rows);
          return y;
        },
        to_double(x), to_double(w));
    Tensor xt = x.clone();
    xt.set_requires_grad(true);
    Rng rng2(5);
    Tensor y = ag::drop_path(xt, 0.4f, true, rng2);
    ASSERT_EQ(y.to_vector(), out.y.to_vector()) << "ag::drop_path drew other keeps";
    Tensor loss = ag::reshape(ag::mean(ag::reshape(ag::mul(y, w), {1, n}), 1), {});
    autograd::backward(loss);
    EXPECT_TRUE(all_close(ops::scale(xt.grad(), static_cast<float>(n)), num, f32_tol(n), "dx " + shape_str(shape)));
  }
}

}  // namespace
}  // namespace perceiver
