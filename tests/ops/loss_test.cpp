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

// Flow targets with some unknown vectors (1e10 as .flo writes, NaN, inf), and one exact match.
Tensor flow_target(const Tensor& pred, uint64_t seed) {
  Tensor t = randn(pred.shape(), seed);
  const int64_t rows = t.numel() / 2;
  for (int64_t r = 0; r < rows; r += 5) t.f32()[2 * r] = r % 3 == 0 ? 1e10f : r % 3 == 1 ? NAN : -INFINITY;
  if (rows > 2) {  // an exact match: no gradient there
    t.f32()[2] = pred.f32()[2];
    t.f32()[3] = pred.f32()[3];
  }
  return t;
}

class EndPointErrorOp : public ::testing::TestWithParam<Shape> {};

TEST_P(EndPointErrorOp, MatchesReference) {
  Tensor p = randn(GetParam(), 141);
  Tensor t = flow_target(p, 142);
  const int64_t rows = p.numel() / 2;
  const std::vector<double> pd = to_double(p), td = to_double(t);
  std::vector<double> d(p.numel());
  const double loss = ref::end_point_error_forward(pd.data(), td.data(), rows);
  ref::end_point_error_backward(d.data(), 1.3, pd.data(), td.data(), rows);
  int64_t known = -1;
  EXPECT_TRUE(all_close(ops::end_point_error(p, t, &known), {loss}, f32_tol(1), "end_point_error"));
  EXPECT_EQ(known, rows - (rows + 4) / 5);
  EXPECT_TRUE(all_close(ops::end_point_error_backward(1.3f, p, t), d, f32_tol(1), "end_point_error_backward"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, EndPointErrorOp,
                         ::testing::Values(Shape{1, 2}, Shape{7, 2}, Shape{3, 5, 9, 2}, Shape{2, 48, 64, 2},
                                           Shape{100003, 2}));

TEST(EndPointErrorOp, KnownValuesAndNoKnownTarget) {
  // errors (3, 4) -> 5 and (0, 0) -> 0; the third target is unknown: mean 2.5
  Tensor p = Tensor::from_vector({3, 2}, {3, 4, 1, 1, 9, 9});
  Tensor t = Tensor::from_vector({3, 2}, {0, 0, 1, 1, 1e10f, 0});
  EXPECT_FLOAT_EQ(ops::end_point_error(p, t).item(), 2.5f);
  const Tensor d = ops::end_point_error_backward(2.0f, p, t);
  const std::vector<float> want = {0.6f, 0.8f, 0, 0, 0, 0};  // dloss 2 x (e / |e|) / known 2
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(d.f32()[i], want[i]) << i;
  Tensor none = Tensor::from_vector({1, 2}, {NAN, 0});
  EXPECT_EQ(ops::end_point_error(p.slice0(0, 1), none).item(), 0.0f);
  EXPECT_EQ(ops::end_point_error_backward(1.0f, p.slice0(0, 1), none).f32()[0], 0.0f);
}

TEST(EndPointErrorOp, RejectsBadInputs) {
  Tensor p = randn({4, 2}, 1);
  EXPECT_TRUE(throws_op_error([&] { ops::end_point_error(randn({4, 3}, 1), randn({4, 3}, 2)); }, "end_point_error"));
  EXPECT_TRUE(throws_op_error([&] { ops::end_point_error(p, randn({2, 4}, 2)); }, "end_point_error"));
  EXPECT_TRUE(throws_op_error([&] { ops::end_point_error(p, Tensor::zeros({4, 2}, DType::kI32)); }, "end_point_error"));
  EXPECT_TRUE(throws_op_error([&] { ops::end_point_error(Tensor::zeros({0, 2}), Tensor::zeros({0, 2})); },
                              "end_point_error"));
  EXPECT_TRUE(throws_op_error([&] { ops::end_point_error_backward(1.0f, p, randn({8}, 2)); }, "end_point_error_backward"));
}

TEST(MseOp, RejectsBadInputs) {
  Tensor p = randn({3, 7}, 1);
  EXPECT_TRUE(throws_op_error([&] { ops::mse(p, randn({7, 3}, 2)); }, "mse"));
  EXPECT_TRUE(throws_op_error([&] { ops::mse(p, Tensor::zeros({3, 7}, DType::kI32)); }, "mse"));
  EXPECT_TRUE(throws_op_error([&] { ops::mse(Tensor::zeros({0}), Tensor::zeros({0})); }, "mse"));
  EXPECT_TRUE(throws_op_error([&] { ops::mse_backward(1.0f, p, randn({21}, 2)); }, "mse_backward"));
}

}  // namespace
}  // namespace perceiver
