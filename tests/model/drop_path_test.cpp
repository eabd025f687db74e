// Stochastic depth in the Perceiver encoder (model.drop_path): self-attend i of S drops each of
// its residual branches per example with probability drop_path (i + 1) / S, so an example that
// loses both leaves the layer unchanged; evaluation never drops; a self layer without the query
// residual cannot take it; the config key reaches the encoder.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "perceiver/autograd/grad_mode.h"
#include "perceiver/models/perceiver.h"
#include "perceiver/nn/perceiver_encoder.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::randn;

nn::PerceiverEncoderConfig encoder_config(float drop_path) {
  nn::PerceiverEncoderConfig c;
  c.cross.q_dim = 16;
  c.cross.kv_dim = 5;
  c.cross.num_heads = 1;
  c.self.q_dim = 16;
  c.self.num_heads = 2;
  c.self_attends_per_block = 2;
  c.self_drop_path = drop_path;
  return c;
}

// Examples whose rows are the same before and after a layer (both branches dropped).
int64_t unchanged_examples(const Tensor& before, const Tensor& after) {
  const int64_t b = before.dim(0), row = before.numel() / b;
  const float* x = before.f32();
  const float* y = after.f32();
  int64_t n = 0;
  for (int64_t i = 0; i < b; ++i) n += std::equal(x + i * row, x + (i + 1) * row, y + i * row);
  return n;
}

TEST(DropPath, SelfAttendsDropWholeExamplesAtTheirDepthsRate) {
  Rng init(3);
  nn::PerceiverEncoder encoder(encoder_config(0.8f), init, "test");
  const int64_t b = 400;
  const Tensor latents = randn({b, 4, 16}, 21), inputs = randn({b, 7, 5}, 22);
  autograd::NoGradGuard no_grad;
  encoder.train(true);
  Rng rng(5);
  std::vector<Tensor> trace;
  encoder.forward(latents, inputs, Tensor(), &rng, &trace);
  ASSERT_EQ(trace.size(), 3u);
  // self-attend 0 drops each branch with p = 0.4 (both: 0.16), self-attend 1 with 0.8 (0.64)
  for (int layer = 0; layer < 2; ++layer) {
    const double p = 0.8 * (layer + 1) / 2, both = p * p;
    const double got = static_cast<double>(unchanged_examples(trace[layer], trace[layer + 1])) / b;
    EXPECT_NEAR(got, both, 5 * std::sqrt(both * (1 - both) / b)) << "self-attend " << layer;
  }
  // evaluation: nothing is dropped, and the output equals a model built without drop path
  encoder.train(false);
  trace.clear();
  const Tensor eval_out = encoder.forward(latents, inputs, Tensor(), nullptr, &trace);
  EXPECT_EQ(unchanged_examples(trace[1], trace[2]), 0);
  Rng init2(3);
  nn::PerceiverEncoder plain(encoder_config(0.0f), init2, "test");
  EXPECT_EQ(eval_out.to_vector(), plain.forward(latents, inputs, Tensor(), nullptr).to_vector());
}

TEST(DropPath, NeedsTheQueryResidualAndAValidRate) {
  Rng init(1);
  nn::PerceiverLayerConfig c;
  c.is_cross = true;
  c.q_dim = 8;
  c.kv_dim = 3;
  c.use_query_residual = false;
  c.drop_path = 0.1f;
  try {
    nn::PerceiverLayer layer(c, init);
    FAIL() << "a layer without the query residual took drop_path";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("drop_path needs the query residual"), std::string::npos) << e.what();
  }
  c.use_query_residual = true;
  c.drop_path = 1.0f;
  EXPECT_THROW(nn::PerceiverLayer(c, init), Error);
}

TEST(DropPath, ConfigKeyReachesTheEncoder) {
  models::PerceiverConfig c;
  c.image_size = {4, 3};
  c.max_resolution = {4, 3};
  c.num_fourier_bands = 2;
  c.num_latents = 4;
  c.d_latents = 8;
  c.self_attends_per_block = 1;
  c.num_classes = 3;
  c.drop_path = 0.9f;
  models::Perceiver model(c, 7);
  model.train(true);
  const Tensor images = randn({64, 4, 3}, 30);
  autograd::NoGradGuard no_grad;
  Rng a(1), b(2);
  // different streams drop different examples, so the training logits differ; eval is fixed
  EXPECT_NE(model.forward(images, &a).to_vector(), model.forward(images, &b).to_vector());
  model.train(false);
  c.drop_path = 0.0f;
  models::Perceiver plain(c, 7);
  plain.train(false);
  EXPECT_EQ(model.forward(images, nullptr).to_vector(), plain.forward(images, nullptr).to_vector());
}

}  // namespace
}  // namespace perceiver
