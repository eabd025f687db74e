// cross_entropy_backward (smoothing 0 and 0.1, with an ignored label) and mse_backward against
// central finite differences of the double reference losses, scaled by an upstream dloss.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/reference/loss.h"
#include "ops/op_test_util.h"
#include "perceiver/ops/loss.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::random_ints;
using testing::randn;
using testing::to_double;
using Vec = std::vector<double>;

constexpr float kDloss = 0.75f;

struct CeCase {
  int64_t rows, classes;
  float smoothing;
  bool ignore_one;
};

class CrossEntropyGrad : public ::testing::TestWithParam<CeCase> {};

TEST_P(CrossEntropyGrad, MatchesFiniteDifferences) {
  const auto [R, K, s, ignore_one] = GetParam();
  std::vector<int32_t> labels = random_ints(R, 0, static_cast<int32_t>(K), 141);
  if (ignore_one) labels[R / 2] = -100;
  Tensor logits = randn({R, K}, 142, 2.0f), lab = Tensor::from_vector_i32({R}, labels);
  const Vec num = testing::numerical_grad(
      [&](const Vec& x) {
        Vec probs(x.size());
        return kDloss * ref::cross_entropy_forward(probs.data(), x.data(), labels.data(), R, K,
                                                   static_cast<double>(s));
      },
      to_double(logits));
  ops::CrossEntropyOut out = ops::cross_entropy(logits, lab, s);
  Tensor d = ops::cross_entropy_backward(kDloss, out.probs, lab, s);
  EXPECT_TRUE(all_close(d, num, 2 * f32_tol(K), "dlogits"));
  if (ignore_one) {
    const std::vector<float> dv = d.to_vector();
    for (int64_t k = 0; k < K; ++k) EXPECT_EQ(dv[(R / 2) * K + k], 0.0f) << "ignored row, class " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, CrossEntropyGrad,
                         ::testing::Values(CeCase{1, 1, 0.0f, false}, CeCase{3, 7, 0.0f, false},
                                           CeCase{3, 7, 0.1f, false}, CeCase{5, 17, 0.0f, true},
                                           CeCase{5, 17, 0.1f, true}, CeCase{4, 129, 0.1f, true}));

class MseGrad : public ::testing::TestWithParam<Shape> {};

TEST_P(MseGrad, MatchesFiniteDifferences) {
  const Shape shape = GetParam();
  Tensor p = randn(shape, 151), t = randn(shape, 152);
  const Vec td = to_double(t);
  const Vec num = testing::numerical_grad(
      [&](const Vec& x) { return kDloss * ref::mse_forward(x.data(), td.data(), static_cast<int64_t>(x.size())); },
      to_double(p));
  EXPECT_TRUE(all_close(ops::mse_backward(kDloss, p, t), num, f32_tol(1), "dpred"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, MseGrad,
                         ::testing::Values(Shape{1, 1}, Shape{3, 7}, Shape{5, 17, 33}, Shape{2, 3, 129}));

class EndPointErrorGrad : public ::testing::TestWithParam<Shape> {};

TEST_P(EndPointErrorGrad, MatchesFiniteDifferences) {
  const Shape shape = GetParam();
  Tensor p = randn(shape, 161), t = randn(shape, 162);  // errors far from 0, where the norm is smooth
  t.f32()[0] = 1e10f;                                   // one unknown target: no gradient there
  const Vec td = to_double(t);
  const Vec num = testing::numerical_grad(
      [&](const Vec& x) {
        return kDloss * ref::end_point_error_forward(x.data(), td.data(), static_cast<int64_t>(x.size()) / 2);
      },
      to_double(p));
  EXPECT_TRUE(all_close(ops::end_point_error_backward(kDloss, p, t), num, f32_tol(1), "dpred"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, EndPointErrorGrad,
                         ::testing::Values(Shape{1, 2}, Shape{7, 2}, Shape{3, 5, 2}, Shape{2, 9, 11, 2}));

}  // namespace
}  // namespace perceiver
