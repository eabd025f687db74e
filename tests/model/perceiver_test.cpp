// The Perceiver classifier: HF parameter names, shapes, end-to-end gradients against finite
// differences, and overfitting a small batch to 100% training accuracy.
#include <gtest/gtest.h>

#include <cmath>

#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/models/perceiver_io/position_encoding.h"
#include "perceiver/models/perceiver.h"
#include "perceiver/optim/optimizer.h"
#include "testing/compare.h"
#include "testing/model_gradcheck.h"
#include "testing/overfit.h"

namespace perceiver {
namespace {

models::PerceiverConfig tiny_config() {
  models::PerceiverConfig c;
  c.image_size = {5, 6};
  c.max_resolution = {5, 6};
  c.num_fourier_bands = 3;  // input width 1 + 2 + 12 = 15
  c.num_latents = 4;
  c.d_latents = 12;
  c.cross_attention_heads = 3;
  c.self_attention_heads = 2;
  c.self_attention_widening_factor = 2;
  c.self_attends_per_block = 2;
  c.num_classes = 5;
  c.init_std = 0.2f;  // larger weights make gradients less trivial
  return c;
}

TEST(Fourier, LayoutMatchesHfSpec) {
  // 2 axes, K = 2 bands: [pos0, pos1, sin(d0 b0), sin(d0 b1), sin(d1 b0), sin(d1 b1), cos ...]
  Tensor pos = models::perceiver_io::linear_position_grid({3, 4});
  ASSERT_EQ(pos.shape(), (Shape{12, 2}));
  EXPECT_FLOAT_EQ(pos.f32()[0], -1.0f);   // first token: row -1, col -1
  EXPECT_FLOAT_EQ(pos.f32()[2 * 1 + 1], -1.0f / 3.0f);  // token 1: col varies fastest
  EXPECT_FLOAT_EQ(pos.f32()[2 * 4 + 0], 0.0f);          // token 4: row 0
  Tensor f = models::perceiver_io::generate_fourier_features(pos, 2, {3, 4}, true, false);
  ASSERT_EQ(f.shape(), (Shape{12, 10}));
  const float* r = f.f32() + 10 * 5;  // token 5: row 0, col -1/3
  const float p0 = pos.f32()[10], p1 = pos.f32()[11];
  const float f0[2] = {1.0f, 1.5f}, f1[2] = {1.0f, 2.0f};  // linspace(1, res/2, 2)
  EXPECT_FLOAT_EQ(r[0], p0);
  EXPECT_FLOAT_EQ(r[1], p1);
  for (int b = 0; b < 2; ++b) {
    EXPECT_NEAR(r[2 + b], std::sin(M_PI * p0 * f0[b]), 1e-6);
    EXPECT_NEAR(r[4 + b], std::sin(M_PI * p1 * f1[b]), 1e-6);
    EXPECT_NEAR(r[6 + b], std::cos(M_PI * p0 * f0[b]), 1e-6);
    EXPECT_NEAR(r[8 + b], std::cos(M_PI * p1 * f1[b]), 1e-6);
  }
}

TEST(Perceiver, ParametersUseHfNames) {
  models::PerceiverConfig c = tiny_config();
  c.num_cross_attends = 3;  // shared after the first: two weight sets
  models::Perceiver model(c, 0);
  std::map<std::string, Shape> names;
  for (auto& [n, t] : model.named_parameters()) names[n] = t.shape();
  EXPECT_EQ(names.at("perceiver.embeddings.latents"), (Shape{4, 12}));
  EXPECT_EQ(names.at("perceiver.encoder.cross_attention.attention.self.layernorm2.weight"), (Shape{15}));
  EXPECT_EQ(names.at("perceiver.encoder.cross_attention.attention.self.query.weight"), (Shape{15, 12}));
  EXPECT_EQ(names.at("perceiver.encoder.cross_attention.attention.output.dense.weight"), (Shape{12, 15}));
  EXPECT_EQ(names.at("perceiver.encoder.self_attends.1.mlp.dense1.weight"), (Shape{24, 12}));
  EXPECT_EQ(names.count("perceiver.encoder.self_attends.0.attention.self.layernorm2.weight"), 0u);
  EXPECT_EQ(names.count("perceiver.encoder.cross_attention_1.attention.self.key.bias"), 1u);
  EXPECT_EQ(names.count("perceiver.encoder.cross_attention_2.attention.self.key.bias"), 0u);
  EXPECT_EQ(names.at("perceiver.decoder.final_layer.weight"), (Shape{5, 12}));
}

float loss_of(const models::Perceiver& model, const Tensor& x, const Tensor& y) {
  autograd::NoGradGuard g;
  return ag::cross_entropy(model.forward(x), y, 0.1f).item();
}

// Every parameter tensor: the analytic gradient of the whole model against central finite
// differences (float32 forward, so the step and tolerance are those of float).
void check_model_gradients(const models::PerceiverConfig& c) {
  models::Perceiver model(c, 7);
  const int64_t b = 3;
  Tensor x = testing::randn({b, c.image_size[0], c.image_size[1]}, 11);
  Tensor y = Tensor::from_vector_i32({b}, {0, 3, 4});
  Tensor loss = ag::cross_entropy(model.forward(x), y, 0.1f);
  autograd::backward(loss);
  const float h = 1e-2f;
  for (auto& [name, p] : model.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name << " got no gradient";
    std::vector<float> analytic = p.grad().to_vector();
    std::vector<double> numeric(analytic.size());
    float* w = p.f32();
    // Check up to 6 entries per tensor, spread over it.
    const int64_t n = p.numel(), stride = std::max<int64_t>(1, n / 6);
    std::vector<float> got;
    std::vector<double> want;
    for (int64_t i = 0; i < n; i += stride) {
      const float orig = w[i];
      w[i] = orig + h;
      const double lp = loss_of(model, x, y);
      w[i] = orig - h;
      const double lm = loss_of(model, x, y);
      w[i] = orig;
      got.push_back(analytic[i]);
      want.push_back((lp - lm) / (2 * h));
    }
    // Finite differences in float32 carry ~1e-5 absolute noise; allow 3% + that.
    double max_ref = 0;
    for (double v : want) max_ref = std::max(max_ref, std::fabs(v));
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_NEAR(got[i], want[i], 0.03 * std::fabs(want[i]) + 0.01 * max_ref + 2e-4) << name << " entry " << i;
  }
  // Each tensor along its own gradient to 0.05%, which a 0.1% error fails (testing/model_gradcheck.h).
  const double l0 = loss_of(model, x, y);
  const auto results = testing::directional_gradient_check(
      model.named_parameters(), [&] { return loss_of(model, x, y); }, 0.02, 5e-4, testing::kF32Eps * std::fabs(l0));
  EXPECT_TRUE(testing::directional_gradients_match(results, 5e-4, results.size() / 2));
}

TEST(Perceiver, GradientsMatchFiniteDifferencesAverageHead) { check_model_gradients(tiny_config()); }

TEST(Perceiver, GradientsMatchFiniteDifferencesQueryHeadTwoCrossAttends) {
  models::PerceiverConfig c = tiny_config();
  c.head = "query";
  c.decoder_heads = 2;
  c.num_cross_attends = 2;
  c.share_weights = false;
  check_model_gradients(c);
}

// The original Perceiver's repeated cross-attends: the second and third share one set of weights,
// so their gradients are sums over two uses.
TEST(Perceiver, GradientsMatchFiniteDifferencesSharedCrossAttends) {
  models::PerceiverConfig c = tiny_config();
  c.num_cross_attends = 3;
  c.share_weights = true;
  c.self_attends_per_block = 1;
  check_model_gradients(c);
}

TEST(Perceiver, RejectsWrongInputShape) {
  models::Perceiver model(tiny_config(), 0);
  try {
    model.forward(Tensor::zeros({2, 6, 5}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[Perceiver] images must be [2, 5, 6, 1] or [2, 5, 6]"),
              std::string::npos) << e.what();
  }
}

TEST(Perceiver, OverfitsASmallBatchTo100Percent) {
  models::PerceiverConfig c = tiny_config();
  c.image_size = {8, 8};
  c.max_resolution = {8, 8};
  c.num_classes = 10;
  c.d_latents = 32;
  c.num_latents = 8;
  c.self_attention_heads = 4;
  c.init_std = 0.02f;
  models::Perceiver model(c, 3);
  const int64_t b = 32;
  Tensor x = testing::randn({b, 8, 8}, 5);
  std::vector<int32_t> labels(b);
  for (int64_t i = 0; i < b; ++i) labels[i] = static_cast<int32_t>((i * 7) % 10);
  const int64_t correct = testing::fit_batch(model, x, labels);
  EXPECT_EQ(correct, b) << "the model did not fit 32 random images";
}

}  // namespace
}  // namespace perceiver
