// clip_grad_norm: total norm in double across tensors (several kernel blocks), scaling only
// above max_norm, undefined gradients skipped, non-finite norms leave gradients untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/optimizer.h"
#include "perceiver/optim/clip.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using Params = std::vector<std::pair<std::string, Tensor>>;

Params make_params_with_grads() {
  Params params = {{"a", Tensor::zeros({3, 4})}, {"b", Tensor::zeros({100000})}, {"c", Tensor::zeros({5})}};
  params[0].second.set_grad(testing::randn({3, 4}, 1));
  params[1].second.set_grad(testing::randn({100000}, 2, 0.01f));
  // "c" has no gradient.
  return params;
}

double ref_norm(const Params& params) {
  double sq = 0;
  for (auto& [name, t] : params)
    if (t.grad().defined())
      for (double g : testing::to_double(t.grad())) sq += g * g;
  return std::sqrt(sq);
}

TEST(Clip, SumSquaresMatchesDouble) {
  Tensor x = testing::randn({70001}, 9);
  double ref = 0;
  for (double v : testing::to_double(x)) ref += v * v;
  EXPECT_NEAR(cpu::sum_squares_f64(x.f32(), x.numel()), ref, 1e-12 * ref);
  EXPECT_FLOAT_EQ(cpu::sum_squares(x.f32(), x.numel()), static_cast<float>(ref));
  EXPECT_EQ(cpu::sum_squares(x.f32(), 0), 0.0f);
}

TEST(Clip, ScalesWhenAboveMaxNorm) {
  Params params = make_params_with_grads();
  const double total = ref_norm(params);
  std::vector<std::vector<double>> before;
  for (auto& [n, t] : params) before.push_back(t.grad().defined() ? testing::to_double(t.grad()) : std::vector<double>{});
  const float max_norm = static_cast<float>(total / 4);
  const float got = optim::clip_grad_norm(params, max_norm);
  EXPECT_NEAR(got, total, 1e-6 * total);
  const double scale = max_norm / (total + 1e-6);
  for (size_t i = 0; i < 2; ++i) {
    std::vector<double> want = before[i];
    for (double& g : want) g *= scale;
    EXPECT_TRUE(testing::all_close(params[i].second.grad(), want, testing::f32_tol(1, 4), params[i].first));
  }
  EXPECT_FALSE(params[2].second.grad().defined());
  EXPECT_NEAR(ref_norm(params), max_norm, 1e-5 * max_norm);
}

TEST(Clip, LeavesGradientsBelowMaxNorm) {
  Params params = make_params_with_grads();
  const std::vector<float> before = params[0].second.grad().to_vector();
  const float total = optim::clip_grad_norm(params, 1e6f);
  EXPECT_NEAR(total, ref_norm(params), 1e-6 * total);
  EXPECT_EQ(params[0].second.grad().to_vector(), before);
  EXPECT_FLOAT_EQ(optim::grad_norm(params), total);
}

TEST(Clip, NonFiniteNormLeavesGradients) {
  Params params = make_params_with_grads();
  params[0].second.grad().f32()[3] = std::numeric_limits<float>::infinity();
  const std::vector<float> before = params[1].second.grad().to_vector();
  EXPECT_TRUE(std::isinf(optim::clip_grad_norm(params, 1.0f)));
  EXPECT_EQ(params[1].second.grad().to_vector(), before);
  params[0].second.grad().f32()[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(optim::clip_grad_norm(params, 1.0f)));
  EXPECT_EQ(params[1].second.grad().to_vector(), before);
}

TEST(Clip, NoGradientsAndBadMaxNorm) {
  Params params = {{"a", Tensor::zeros({2})}};
  EXPECT_EQ(optim::clip_grad_norm(params, 1.0f), 0.0f);
  EXPECT_THROW(optim::clip_grad_norm(params, 0.0f), Error);
  EXPECT_THROW(optim::clip_grad_norm(params, -1.0f), Error);
  EXPECT_THROW(optim::clip_grad_norm(params, NAN), Error);
}

}  // namespace
}  // namespace perceiver
