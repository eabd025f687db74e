// ops::batch_norm_backward (training) and batch_norm_inference_backward (eval) against central
// finite differences of the double reference forwards, for x, weight and bias; ag::batch_norm:
// gradients through the tape and torch's running-stat update in training mode.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/reference/batch_norm.h"
#include "ops/op_test_util.h"
#include "perceiver/autograd/functions_conv.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/ops/batch_norm.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::fd_grad;
using testing::randn;
using testing::to_double;

constexpr float kEps = 1e-5f;
constexpr float kMomentum = 0.1f;

struct Dims {
  int64_t B, C, S;
};
Dims dims(const Shape& s) { return {s[0], s[1], shape_numel(s) / (s[0] * s[1])}; }

Tensor positive(const Shape& s, uint64_t seed) {
  Tensor t = randn(s, seed);
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = 0.5f + std::fmod(std::fabs(p[i]), 2.0f);
  return t;
}

class BatchNormGrad : public ::testing::TestWithParam<Shape> {};

TEST_P(BatchNormGrad, TrainMatchesFiniteDifferences) {
  const Shape shape = GetParam();
  const Dims d = dims(shape);
  const Tensor x = randn(shape, 71), w = randn({d.C}, 72), b = randn({d.C}, 73), dy = randn(shape, 74);
  const ops::BatchNormTrainOut out = ops::batch_norm_train(x, w, b, kEps);
  const ops::BatchNormGrads g = ops::batch_norm_backward(dy, x, w, out.mean, out.rstd);
  const auto xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy);
  auto fwd = [&](const std::vector<double>& xv, const std::vector<double>& wv,
                 const std::vector<double>& bv) {
    std::vector<double> y(xv.size()), m(d.C), v(d.C), vu(d.C);
    ref::batch_norm_train_forward(y.data(), m.data(), v.data(), vu.data(), xv.data(), wv.data(),
                                  bv.data(), d.B, d.C, d.S, static_cast<double>(kEps));
    return y;
  };
  const auto ndx = fd_grad([&](const std::vector<double>& v) { return fwd(v, wd, bd); }, xd, dyd);
  const auto ndw = fd_grad([&](const std::vector<double>& v) { return fwd(xd, v, bd); }, wd, dyd);
  const auto ndb = fd_grad([&](const std::vector<double>& v) { return fwd(xd, wd, v); }, bd, dyd);
  const int64_t n = d.B * d.S;
  EXPECT_TRUE(all_close(g.dx, ndx, 4 * f32_tol(n), "dx"));
  EXPECT_TRUE(all_close(g.dw, ndw, 4 * f32_tol(n), "dw"));
  EXPECT_TRUE(all_close(g.db, ndb, 4 * f32_tol(n), "db"));
}

TEST_P(BatchNormGrad, InferenceMatchesFiniteDifferences) {
  const Shape shape = GetParam();
  const Dims d = dims(shape);
  const Tensor x = randn(shape, 75), w = randn({d.C}, 76), b = randn({d.C}, 77), dy = randn(shape, 78);
  const Tensor rm = randn({d.C}, 79), rv = positive({d.C}, 80);
  const ops::BatchNormGrads g = ops::batch_norm_inference_backward(dy, x, w, rm, rv, kEps);
  const auto xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy);
  const auto rmd = to_double(rm), rvd = to_double(rv);
  auto fwd = [&](const std::vector<double>& xv, const std::vector<double>& wv,
                 const std::vector<double>& bv) {
    std::vector<double> y(xv.size());
    ref::batch_norm_inference_forward(y.data(), xv.data(), wv.data(), bv.data(), rmd.data(),
                                      rvd.data(), d.B, d.C, d.S, static_cast<double>(kEps));
    return y;
  };
  const auto ndx = fd_grad([&](const std::vector<double>& v) { return fwd(v, wd, bd); }, xd, dyd);
  const auto ndw = fd_grad([&](const std::vector<double>& v) { return fwd(xd, v, bd); }, wd, dyd);
  const auto ndb = fd_grad([&](const std::vector<double>& v) { return fwd(xd, wd, v); }, bd, dyd);
  const int64_t n = d.B * d.S;
  EXPECT_TRUE(all_close(g.dx, ndx, 4 * f32_tol(1), "dx"));
  EXPECT_TRUE(all_close(g.dw, ndw, 4 * f32_tol(n), "dw"));
  EXPECT_TRUE(all_close(g.db, ndb, 4 * f32_tol(n), "db"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, BatchNormGrad,
                         ::testing::Values(Shape{1, 1, 1, 3}, Shape{3, 2, 1, 1}, Shape{2, 3, 5, 7},
                                           Shape{3, 4, 9}, Shape{5, 3}));

// Leaves x, w, b that require grad.
struct Leaves {
  Tensor x, w, b;
};
Leaves leaves(const Shape& shape, uint64_t seed) {
  Leaves l{randn(shape, seed), randn({shape[1]}, seed + 1), randn({shape[1]}, seed + 2)};
  l.x.set_requires_grad(true);
  l.w.set_requires_grad(true);
  l.b.set_requires_grad(true);
  return l;
}

TEST(BatchNormGrad, AutogradTrainingMatchesBackwardOp) {
  const Leaves l = leaves({2, 3, 5, 7}, 81);
  Tensor rm = Tensor::zeros({3}), rv = Tensor::full({3}, 1.0f);
  const Tensor y = ag::batch_norm(l.x, l.w, l.b, rm, rv, kEps, kMomentum, true);
  const Tensor dy = randn(y.shape(), 84);
  autograd::backward(y, dy);
  const ops::BatchNormTrainOut out = ops::batch_norm_train(l.x, l.w, l.b, kEps);
  EXPECT_EQ(y.to_vector(), out.y.to_vector());
  const ops::BatchNormGrads g = ops::batch_norm_backward(dy, l.x, l.w, out.mean, out.rstd);
  EXPECT_EQ(l.x.grad().to_vector(), g.dx.to_vector());
  EXPECT_EQ(l.w.grad().to_vector(), g.dw.to_vector());
  EXPECT_EQ(l.b.grad().to_vector(), g.db.to_vector());
}

TEST(BatchNormGrad, AutogradEvalUsesRunningStatsAndLeavesThem) {
  const Leaves l = leaves({2, 3, 5, 7}, 85);
  Tensor rm = randn({3}, 88), rv = positive({3}, 89);
  const std::vector<float> rm0 = rm.to_vector(), rv0 = rv.to_vector();
  const Tensor y = ag::batch_norm(l.x, l.w, l.b, rm, rv, kEps, kMomentum, false);
  EXPECT_EQ(y.to_vector(), ops::batch_norm_inference(l.x, l.w, l.b, rm, rv, kEps).to_vector());
  const Tensor dy = randn(y.shape(), 90);
  autograd::backward(y, dy);
  const ops::BatchNormGrads g = ops::batch_norm_inference_backward(dy, l.x, l.w, rm, rv, kEps);
  EXPECT_EQ(l.x.grad().to_vector(), g.dx.to_vector());
  EXPECT_EQ(l.w.grad().to_vector(), g.dw.to_vector());
  EXPECT_EQ(l.b.grad().to_vector(), g.db.to_vector());
  EXPECT_EQ(rm.to_vector(), rm0);
  EXPECT_EQ(rv.to_vector(), rv0);
}

// torch: running = (1 - m) running + m batch; running_var takes the unbiased variance.
TEST(BatchNormGrad, TrainingUpdatesRunningStatsLikeTorch) {
  const Shape shape{3, 4, 5, 6};
  const Dims d = dims(shape);
  const int64_t n = d.B * d.S;
  Tensor rm = Tensor::zeros({d.C}), rv = Tensor::full({d.C}, 1.0f);  // torch's initial buffers
  std::vector<double> erm(d.C, 0.0), erv(d.C, 1.0);
  for (int step = 0; step < 3; ++step) {
    const Tensor x = randn(shape, 91 + step, 2.0f);
    const std::vector<float> xv = x.to_vector();
    {
      autograd::NoGradGuard no_grad;  // updates happen in training mode regardless of grad mode
      ag::batch_norm(x, Tensor::full({d.C}, 1.0f), Tensor::zeros({d.C}), rm, rv, kEps, kMomentum, true);
    }
    for (int64_t c = 0; c < d.C; ++c) {
      double s = 0, sq = 0;
      for (int64_t b = 0; b < d.B; ++b)
        for (int64_t i = 0; i < d.S; ++i) s += xv[(b * d.C + c) * d.S + i];
      const double mean = s / n;
      for (int64_t b = 0; b < d.B; ++b)
        for (int64_t i = 0; i < d.S; ++i) {
          const double dv = xv[(b * d.C + c) * d.S + i] - mean;
          sq += dv * dv;
        }
      erm[c] = (1 - kMomentum) * erm[c] + kMomentum * mean;
      erv[c] = (1 - kMomentum) * erv[c] + kMomentum * sq / (n - 1);
    }
  }
  EXPECT_TRUE(all_close(rm, erm, f32_tol(n), "running_mean"));
  EXPECT_TRUE(all_close(rv, erv, f32_tol(n), "running_var"));
}

TEST(BatchNormGrad, TrainingWithoutRunningStats) {
  const Leaves l = leaves({2, 3, 4, 4}, 95);
  Tensor none_m, none_v;
  const Tensor y = ag::batch_norm(l.x, l.w, l.b, none_m, none_v, kEps, kMomentum, true);
  EXPECT_EQ(y.to_vector(), ops::batch_norm_train(l.x, l.w, l.b, kEps).y.to_vector());
  EXPECT_FALSE(none_m.defined());
}

}  // namespace
}  // namespace perceiver
