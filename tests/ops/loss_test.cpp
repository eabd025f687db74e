// ops::cross_entropy (smoothing 0 and 0.1, ignored labels), its backward, and mse with its
// backward against the double reference; label-range, dtype and shape errors.
#include <gtest/gtest.h>

#include <cmath>
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
using testing::throws_op_error;
using testing::to_double;

struct CeCase {
  int64_t rows, classes;
  float smoothing;
  bool ignore_some;
};

class CrossEntropyOp : public ::testing::TestWithParam<CeCase> {};

TEST_P(CrossEntropyOp, MatchesReference) {
  const auto [R, K, s, ignore_some] = GetParam();
  std::vector<int32_t> labels = random_ints(R, 0, static_cast<int32_t>(K), 121);
  if (ignore_some)
    for (int64_t r = 0; r < R; r += 3) labels[r] = -100;
  Tensor logits = randn({R, K}, 122, 3.0f), lab = Tensor::from_vector_i32({R}, labels);
  std::vector<double> probs(R * K), dlogits(R * K);
  const std::vector<double> ld = to_double(logits);
  const double loss = ref::cross_entropy_forward(probs.data(), ld.data(), labels.data(), R, K,
                                                 static_cast<double>(s));
  ref::cross_entropy_backward(dlogits.data(), 0.7, probs.data(), labels.data(), R, K,
                              static_cast<double>(s));
  ops::CrossEntropyOut out = ops::cross_entropy(logits, lab, s);
  EXPECT_EQ(out.loss.rank(), 0);
  EXPECT_TRUE(all_close(out.loss, {loss}, f32_tol(K), "loss"));
  EXPECT_TRUE(all_close(out.probs, probs, f32_tol(K), "probs"));
  EXPECT_TRUE(all_close(ops::cross_entropy_backward(0.7f, out.probs, lab, s), dlogits, f32_tol(K),
                        "dlogits"));
}

INSTANTIATE_TEST_SUITE_P(Cases, CrossEntropyOp,
                         ::testing::Values(CeCase{1, 1, 0.0f, false}, CeCase{3, 7, 0.0f, false},
                                           CeCase{17, 33, 0.1f, false}, CeCase{5, 129, 0.1f, true},
                                           CeCase{6, 10, 0.0f, true}, CeCase{2051, 1000, 0.1f, true}));

TEST(CrossEntropyOp, KnownValueAndAllIgnored) {
  // Uniform logits: -log p = log K for every class, with or without smoothing.
  Tensor logits = Tensor::zeros({2, 4});
  Tensor lab = Tensor::from_vector_i32({2}, {1, 3});
  EXPECT_NEAR(ops::cross_entropy(logits, lab, 0.0f).loss.item(), std::log(4.0), 1e-6);
  EXPECT_NEAR(ops::cross_entropy(logits, lab, 0.3f).loss.item(), std::log(4.0), 1e-6);
  // Every label ignored: loss 0 and zero gradient (no NaN from 0 / 0).
  Tensor none = Tensor::from_vector_i32({2}, {-100, -1});
  ops::CrossEntropyOut out = ops::cross_entropy(logits, none, 0.1f);
  EXPECT_EQ(out.loss.item(), 0.0f);
  for (float g : ops::cross_entropy_backward(1.0f, out.probs, none, 0.1f).to_vector()) EXPECT_EQ(g, 0.0f);
}

TEST(CrossEntropyOp, RejectsBadInputs) {
  Tensor logits = randn({2, 4}, 1);
  Tensor lab = Tensor::from_vector_i32({2}, {0, 3});
  EXPECT_TRUE(throws_op_error([&] { ops::cross_entropy(logits, Tensor::from_vector_i32({2}, {0, 4}), 0.0f); },
                              "cross_entropy"));
  EXPECT_TRUE(throws_op_error([&] { ops::cross_entropy(logits, Tensor::zeros({2}), 0.0f); }, "cross_entropy"));
  EXPECT_TRUE(throws_op_error([&] { ops::cross_entropy(logits, Tensor::from_vector_i32({3}, {0, 1, 2}), 0.0f); },
                              "cross_entropy"));
  EXPECT_TRUE(throws_op_error([&] { ops::cross_entropy(randn({2, 4, 1}, 1), lab, 0.0f); }, "cross_entropy"));
  EXPECT_TRUE(throws_op_error([&] { ops::cross_entropy(Tensor::zeros({2, 4}, DType::kI32), lab, 0.0f); },
                              "cross_entropy"));
  EXPECT_TRUE(throws_op_error([&] { ops::cross_entropy(logits, lab, 1.5f); }, "cross_entropy"));
  EXPECT_TRUE(throws_op_error([&] { ops::cross_entropy(logits, lab, -0.1f); }, "cross_entropy"));
  EXPECT_TRUE(throws_op_error([&] { ops::cross_entropy_backward(1.0f, logits, Tensor::from_vector_i32({2}, {9, 0}), 0.0f); },
                              "cross_entropy_backward"));
}

class MseOp : public ::testing::TestWithParam<Shape> {};

TEST_P(MseOp, MatchesReference) {
  const Shape shape = GetParam();
  Tensor p = randn(shape, 131), t = randn(shape, 132);
  const int64_t n = p.numel();
  const std::vector<double> pd = to_double(p), td = to_double(t);
  std::vector<double> d(n);
  const double loss = ref::mse_forward(pd.data(), td.data(), n);
  ref::mse_backward(d.data(), 1.3, pd.data(), td.data(), n);
  EXPECT_TRUE(all_close(ops::mse(p, t), {loss}, f32_tol(1), "mse"));
  EXPECT_TRUE(all_close(ops::mse_backward(1.3f, p, t), d, f32_tol(1), "mse_backward"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, MseOp,
                         ::testing::Values(Shape{1, 1}, Shape{3, 7}, Shape{5, 17, 33},
                                           Shape{2, 3, 129}, Shape{3, 100003}));

TEST(MseOp, RejectsBadInputs) {
  Tensor p = randn({3, 7}, 1);
  EXPECT_TRUE(throws_op_error([&] { ops::mse(p, randn({7, 3}, 2)); }, "mse"));
  EXPECT_TRUE(throws_op_error([&] { ops::mse(p, Tensor::zeros({3, 7}, DType::kI32)); }, "mse"));
  EXPECT_TRUE(throws_op_error([&] { ops::mse(Tensor::zeros({0}), Tensor::zeros({0})); }, "mse"));
  EXPECT_TRUE(throws_op_error([&] { ops::mse_backward(1.0f, p, randn({21}, 2)); }, "mse_backward"));
}

}  // namespace
}  // namespace perceiver
