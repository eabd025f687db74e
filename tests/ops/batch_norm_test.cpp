// ops::batch_norm_{train,inference}, their backward ops and the running-stat update against the
// double reference on odd NCHW shapes (plus rank 2 and 3), shifted data, affine = False and
// threaded sizes; shape, dtype and hyper-parameter errors.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/reference/batch_norm.h"
#include "ops/op_test_util.h"
#include "perceiver/ops/batch_norm.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::randn;
using testing::throws_op_error;
using testing::to_double;

constexpr float kEps = 1e-5f;

struct Dims {
  int64_t B, C, S;
};
Dims dims(const Shape& s) {
  const int64_t B = s[0], C = s[1];
  return {B, C, shape_numel(s) / (B * C)};
}

// Positive running variances in [0.5, 2.5).
Tensor positive(const Shape& s, uint64_t seed) {
  Tensor t = randn(s, seed);
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = 0.5f + std::fmod(std::fabs(p[i]), 2.0f);
  return t;
}

struct RefTrain {
  std::vector<double> y, mean, var, var_unbiased;
};

RefTrain ref_train(const Tensor& x, const Tensor& w, const Tensor& b) {
  const Dims d = dims(x.shape());
  RefTrain r{std::vector<double>(x.numel()), std::vector<double>(d.C), std::vector<double>(d.C),
             std::vector<double>(d.C)};
  const std::vector<double> xd = to_double(x);
  const std::vector<double> wd = w.defined() ? to_double(w) : std::vector<double>();
  const std::vector<double> bd = b.defined() ? to_double(b) : std::vector<double>();
  ref::batch_norm_train_forward(r.y.data(), r.mean.data(), r.var.data(), r.var_unbiased.data(),
                                xd.data(), w.defined() ? wd.data() : nullptr,
                                b.defined() ? bd.data() : nullptr, d.B, d.C, d.S,
                                static_cast<double>(kEps));
  return r;
}

class BatchNormOp : public ::testing::TestWithParam<Shape> {};

TEST_P(BatchNormOp, TrainForwardMatchesReference) {
  const Shape shape = GetParam();
  const Dims d = dims(shape);
  Tensor x = randn(shape, 1, 2.0f);  // mean 3, std 2
  float* px = x.f32();
  for (int64_t i = 0; i < x.numel(); ++i) px[i] += 3.0f;
  const Tensor w = randn({d.C}, 2), b = randn({d.C}, 3);
  const ops::BatchNormTrainOut out = ops::batch_norm_train(x, w, b, kEps);
  ASSERT_EQ(out.y.shape(), shape);
  const RefTrain r = ref_train(x, w, b);
  const int64_t n = d.B * d.S;
  std::vector<double> rstd(d.C);
  for (int64_t c = 0; c < d.C; ++c) rstd[c] = 1.0 / std::sqrt(r.var[c] + kEps);
  EXPECT_TRUE(all_close(out.y, r.y, 2 * f32_tol(n), "y"));
  EXPECT_TRUE(all_close(out.mean, r.mean, f32_tol(n), "mean"));
  EXPECT_TRUE(all_close(out.var, r.var, 2 * f32_tol(n), "var"));
  EXPECT_TRUE(all_close(out.rstd, rstd, 2 * f32_tol(n), "rstd"));
  EXPECT_TRUE(all_close(out.var_unbiased, r.var_unbiased, 2 * f32_tol(n), "var_unbiased"));
}

TEST_P(BatchNormOp, InferenceForwardMatchesReference) {
  const Shape shape = GetParam();
  const Dims d = dims(shape);
  const Tensor x = randn(shape, 4), w = randn({d.C}, 5), b = randn({d.C}, 6);
  const Tensor rm = randn({d.C}, 7), rv = positive({d.C}, 8);
  const Tensor y = ops::batch_norm_inference(x, w, b, rm, rv, kEps);
  std::vector<double> ref(x.numel());
  const auto xd = to_double(x), wd = to_double(w), bd = to_double(b), rmd = to_double(rm), rvd = to_double(rv);
  ref::batch_norm_inference_forward(ref.data(), xd.data(), wd.data(), bd.data(), rmd.data(),
                                    rvd.data(), d.B, d.C, d.S, static_cast<double>(kEps));
  EXPECT_TRUE(all_close(y, ref, f32_tol(1), "y"));
}

TEST_P(BatchNormOp, TrainBackwardMatchesReference) {
  const Shape shape = GetParam();
  const Dims d = dims(shape);
  const Tensor x = randn(shape, 9), w = randn({d.C}, 10), b = randn({d.C}, 11), dy = randn(shape, 12);
  const ops::BatchNormTrainOut out = ops::batch_norm_train(x, w, b, kEps);
  const ops::BatchNormGrads g = ops::batch_norm_backward(dy, x, w, out.mean, out.rstd);
  const RefTrain r = ref_train(x, w, b);
  std::vector<double> dx(x.numel()), dw(d.C), db(d.C);
  const auto dyd = to_double(dy), xd = to_double(x), wd = to_double(w);
  ref::batch_norm_train_backward(dx.data(), dw.data(), db.data(), dyd.data(), xd.data(), wd.data(),
                                 r.mean.data(), r.var.data(), d.B, d.C, d.S, static_cast<double>(kEps));
  const int64_t n = d.B * d.S;
  EXPECT_TRUE(all_close(g.dx, dx, 2 * f32_tol(n), "dx"));
  EXPECT_TRUE(all_close(g.dw, dw, f32_tol(n), "dw"));
  EXPECT_TRUE(all_close(g.db, db, f32_tol(n), "db"));
}

TEST_P(BatchNormOp, InferenceBackwardMatchesReference) {
  const Shape shape = GetParam();
  const Dims d = dims(shape);
  const Tensor x = randn(shape, 13), w = randn({d.C}, 14), dy = randn(shape, 15);
  const Tensor rm = randn({d.C}, 16), rv = positive({d.C}, 17);
  const ops::BatchNormGrads g = ops::batch_norm_inference_backward(dy, x, w, rm, rv, kEps);
  std::vector<double> dx(x.numel()), dw(d.C), db(d.C);
  const auto dyd = to_double(dy), xd = to_double(x), wd = to_double(w), rmd = to_double(rm), rvd = to_double(rv);
  ref::batch_norm_inference_backward(dx.data(), dw.data(), db.data(), dyd.data(), xd.data(), wd.data(),
                                     rmd.data(), rvd.data(), d.B, d.C, d.S, static_cast<double>(kEps));
  const int64_t n = d.B * d.S;
  EXPECT_TRUE(all_close(g.dx, dx, f32_tol(1), "dx"));
  EXPECT_TRUE(all_close(g.dw, dw, f32_tol(n), "dw"));
  EXPECT_TRUE(all_close(g.db, db, f32_tol(n), "db"));
}

// n = 3 per channel (n = 2 makes dx vanish analytically), S = 1, odd NCHW, the HF fixture map (B, 8, 12, 16), rank 3 and 2 (BatchNorm1d
// layouts) and a threaded size.
INSTANTIATE_TEST_SUITE_P(Shapes, BatchNormOp,
                         ::testing::Values(Shape{1, 1, 1, 3}, Shape{3, 2, 1, 1}, Shape{2, 3, 5, 7},
                                           Shape{3, 8, 12, 16}, Shape{3, 4, 9}, Shape{6, 5},
                                           Shape{4, 64, 28, 28}));

// With two values per channel and eps = 0, xhat = -1, +1 and
// dx = w rstd (dy - mean(dy) - xhat mean(dy xhat)) is 0; only rounding of the O(w rstd |dy|) terms
// may remain (the relative-tolerance tests above would be meaningless here).
TEST(BatchNormOp, TwoValuesPerChannelGiveZeroInputGradient) {
  const Tensor x = Tensor::from_vector({1, 1, 1, 2}, {0.3f, 1.7f}), w = Tensor::full({1}, 2.0f);
  const ops::BatchNormTrainOut out = ops::batch_norm_train(x, w, Tensor(), 0.0f);
  const ops::BatchNormGrads g =
      ops::batch_norm_backward(Tensor::from_vector({1, 1, 1, 2}, {1.0f, -0.5f}), x, w, out.mean, out.rstd);
  const double scale = 2.0 * out.rstd.item() * 1.0;  // w rstd max|dy|
  for (float v : g.dx.to_vector()) EXPECT_NEAR(v, 0.0, 8 * testing::kF32Eps * scale);
}

TEST(BatchNormOp, AffineFalseUsesUnitWeightZeroBias) {
  const Tensor x = randn({2, 3, 5, 7}, 20);
  const ops::BatchNormTrainOut out = ops::batch_norm_train(x, Tensor(), Tensor(), kEps);
  EXPECT_TRUE(all_close(out.y, ref_train(x, Tensor(), Tensor()).y, f32_tol(70), "y"));
  const Tensor rm = randn({3}, 21), rv = positive({3}, 22);
  const Tensor y = ops::batch_norm_inference(x, Tensor(), Tensor(), rm, rv, kEps);
  const Tensor y1 = ops::batch_norm_inference(x, Tensor::full({3}, 1.0f), Tensor::zeros({3}), rm, rv, kEps);
  EXPECT_EQ(y.to_vector(), y1.to_vector());
}

TEST(BatchNormOp, UpdateRunningStatsFollowsTorch) {
  Tensor rm = randn({5}, 30), rv = positive({5}, 31);
  const Tensor mean = randn({5}, 32), var_u = positive({5}, 33);
  const std::vector<float> rm0 = rm.to_vector(), rv0 = rv.to_vector(), m = mean.to_vector(), v = var_u.to_vector();
  ops::batch_norm_update_running_stats(rm, rv, mean, var_u, 0.1f);
  for (int c = 0; c < 5; ++c) {
    EXPECT_FLOAT_EQ(rm.to_vector()[c], 0.9f * rm0[c] + 0.1f * m[c]);
    EXPECT_FLOAT_EQ(rv.to_vector()[c], 0.9f * rv0[c] + 0.1f * v[c]);
  }
}

TEST(BatchNormOp, RejectsBadInputs) {
  const Tensor x = randn({2, 3, 5, 7}, 40), w = randn({3}, 41), b = randn({3}, 42);
  const Tensor rm = randn({3}, 43), rv = positive({3}, 44);
  EXPECT_TRUE(throws_op_error([&] { ops::batch_norm_train(randn({3}, 1), w, b, kEps); }, "batch_norm_train"));
  EXPECT_TRUE(throws_op_error([&] { ops::batch_norm_train(randn({1, 3, 1, 1}, 1), w, b, kEps); },
                              "batch_norm_train"));  // one value per channel
  EXPECT_TRUE(throws_op_error([&] { ops::batch_norm_train(x, randn({4}, 1), b, kEps); }, "batch_norm_train"));
  EXPECT_TRUE(throws_op_error([&] { ops::batch_norm_train(x, w, randn({3, 1}, 1), kEps); }, "batch_norm_train"));
  EXPECT_TRUE(throws_op_error([&] { ops::batch_norm_train(x, w, b, -1.0f); }, "batch_norm_train"));
  EXPECT_TRUE(throws_op_error([&] { ops::batch_norm_train(Tensor::zeros({2, 3, 5, 7}, DType::kI32), w, b, kEps); },
                              "batch_norm_train"));
  EXPECT_TRUE(throws_op_error([&] { ops::batch_norm_inference(x, w, b, rm, Tensor(), kEps); },
                              "batch_norm_inference"));
  EXPECT_TRUE(throws_op_error([&] { ops::batch_norm_inference(x, w, b, randn({2}, 1), rv, kEps); },
                              "batch_norm_inference"));
  const ops::BatchNormTrainOut out = ops::batch_norm_train(x, w, b, kEps);
  EXPECT_TRUE(throws_op_error([&] { ops::batch_norm_backward(randn({2, 3, 5, 6}, 1), x, w, out.mean, out.rstd); },
                              "batch_norm_backward"));
  EXPECT_TRUE(throws_op_error([&] { ops::batch_norm_backward(x, x, w, out.mean, Tensor()); },
                              "batch_norm_backward"));
  EXPECT_TRUE(throws_op_error([&] { ops::batch_norm_inference_backward(x, x, w, rm, randn({4}, 1), kEps); },
                              "batch_norm_inference_backward"));
  Tensor rm2 = rm.clone(), rv2 = rv.clone(), none;
  EXPECT_TRUE(throws_op_error([&] { ops::batch_norm_update_running_stats(rm2, rv2, out.mean, out.var_unbiased, 1.5f); },
                              "batch_norm_update_running_stats"));
  EXPECT_TRUE(throws_op_error([&] { ops::batch_norm_update_running_stats(rm2, none, out.mean, out.var_unbiased, 0.1f); },
                              "batch_norm_update_running_stats"));
}

}  // namespace
}  // namespace perceiver
