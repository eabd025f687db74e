// The latents' cross-attention weights (PerceiverLayer::attention_probs, Model::
// cross_attention_probs) against the formula computed here in double from the layer's named
// weights, and the `perceiver attention` pictures for an image model and the language model.
#include <gtest/gtest.h>

#include <cmath>

#include "parity/hf_task_cli_util.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/data/image_processor.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/models/perceiver.h"
#include "perceiver/ops/layer_norm.h"
#include "perceiver/ops/linear.h"

namespace perceiver {
namespace {

std::string image(const std::string& name) {
  return std::string(PERCEIVER_SOURCE_DIR) + "/tests/data/hf/preprocessing/images/" + name;
}

TEST(HfAttention, CrossAttentionWeightsFollowTheFormula) {
  testing::TempDir tmp;
  const std::string dir = testing::make_family_folder("language-perceiver", tmp.path + "/lm");
  auto model = io::load_model_folder(dir);
  autograd::NoGradGuard no_grad;
  const int64_t b = 2, m = 11;
  std::vector<int32_t> ids(b * m), mask(b * m, 1);
  for (int64_t i = 0; i < b * m; ++i) ids[i] = static_cast<int32_t>(6 + (i * 37) % 250);
  for (int64_t j = 8; j < m; ++j) mask[m + j] = 0;  // the second example is padded after 8 bytes
  const models::TensorMap in = {{"inputs", Tensor::from_vector_i32({b, m}, ids)},
                                {"attention_mask", Tensor::from_vector_i32({b, m}, mask)}};
  const Tensor probs = model->cross_attention_probs(in);
  models::TensorMap trace;
  model->forward(in, &trace);
  const Tensor x = trace.at("encoder_input"), z = trace.at("latents_initial");  // (B, M, C), (N, D)
  const int64_t heads = probs.dim(1), n = probs.dim(2);
  ASSERT_EQ(probs.shape(), Shape({b, heads, n, m}));
  // q = LN1(z) Wq^T + bq, k = LN2(x) Wk^T + bk; weights = softmax(q_h k_h^T / sqrt(dh) + mask)
  std::map<std::string, Tensor> p;
  for (auto& [name, t] : model->named_parameters()) p[name] = t;
  const std::string pre = "perceiver.encoder.cross_attention.attention.self.";
  auto ln = [&](const Tensor& t, const std::string& which) {
    return ops::layer_norm(t, p.at(pre + which + ".weight"), p.at(pre + which + ".bias"), 1e-5f).y;
  };
  const Tensor q = ops::linear(ln(z, "layernorm1"), p.at(pre + "query.weight"), p.at(pre + "query.bias"));
  const Tensor k = ops::linear(ln(x, "layernorm2"), p.at(pre + "key.weight"), p.at(pre + "key.bias"));
  const int64_t qk = q.dim(-1), dh = qk / heads;
  double worst = 0;
  for (int64_t i = 0; i < b; ++i)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t r = 0; r < n; ++r) {
        std::vector<double> s(m);
        double top = -1e300, sum = 0;
        for (int64_t j = 0; j < m; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < dh; ++d) dot += double(q.f32()[r * qk + h * dh + d]) * k.f32()[(i * m + j) * qk + h * dh + d];
          s[j] = mask[i * m + j] ? dot / std::sqrt(double(dh)) : -1e300;
          top = std::max(top, s[j]);
        }
        for (int64_t j = 0; j < m; ++j) sum += (s[j] = mask[i * m + j] ? std::exp(s[j] - top) : 0.0);
        for (int64_t j = 0; j < m; ++j)
          worst = std::max(worst, std::fabs(s[j] / sum - probs.f32()[((i * heads + h) * n + r) * m + j]));
      }
  EXPECT_LT(worst, 1e-5);
  for (int64_t j = 8; j < m; ++j) EXPECT_EQ(probs.f32()[((1 * heads + 0) * n + 0) * m + j], 0.0f) << "padding gets no weight";
}

TEST(HfAttention, PicturesForAnImageModelAndTheLanguageModel) {
  testing::TempDir tmp;
  const std::string vision = testing::make_family_folder("vision-perceiver-fourier", tmp.path + "/v");
  testing::CliRun r = testing::run_perceiver({"attention", "--model", vision, image("chelsea.png"), "--out",
                                              tmp.path + "/v.png", "--latents", "0,3,5"});
  ASSERT_EQ(r.code, 0) << r.out;
  const data::RgbImage v = data::load_image_rgb(tmp.path + "/v.png");
  EXPECT_EQ(v.width, 3 * 224 + 4 * 4);  // three panels of the 224 x 224 processed image
  EXPECT_EQ(v.height, 224 + 2 * 4);
  EXPECT_NE(r.out.find("latent 5: most weight at row "), std::string::npos) << r.out;

  const std::string lm = testing::make_family_folder("language-perceiver", tmp.path + "/lm");
  r = testing::run_perceiver({"attention", "--model", lm, "hello there", "--out", tmp.path + "/t.png", "--first", "4"});
  ASSERT_EQ(r.code, 0) << r.out;
  const data::RgbImage t = data::load_image_rgb(tmp.path + "/t.png");
  EXPECT_EQ(t.width, (11 + 2) * 6);  // [CLS] + 11 bytes + [SEP], 6 px each
  EXPECT_EQ(t.height, 4 * 6);
  EXPECT_NE(r.out.find("latent 3: most weight at token "), std::string::npos) << r.out;

  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"attention", "--model", lm, "x", "--out", tmp.path + "/b.png", "--latents", "0,99"}, "--latents: expected indices from 0 to"},
      {{"attention", "--model", vision, tmp.path + "/missing.png", "--out", tmp.path + "/b.png"}, "missing.png"},
  };
  for (const auto& [args, message] : bad) {
    r = testing::run_perceiver(args);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find(message), std::string::npos) << r.out;
  }
  EXPECT_FALSE(std::ifstream(tmp.path + "/b.png").good()) << "nothing is written on an error";
}

TEST(HfAttention, PicturesForOurPerceiverClassifier) {
  testing::TempDir tmp;
  models::PerceiverConfig c;  // 28 x 28 grey images
  c.num_latents = 6;
  c.d_latents = 32;
  c.self_attends_per_block = 1;
  models::Perceiver model(c, 3);
  io::save_model_folder(tmp.path + "/p", model);
  const std::string png = std::string(PERCEIVER_SOURCE_DIR) + "/tests/data/images/grey.png";
  const testing::CliRun r = testing::run_perceiver({"attention", "--model", tmp.path + "/p", png, "--out",
                                                    tmp.path + "/p.png", "--first", "2", "--invert"});
  ASSERT_EQ(r.code, 0) << r.out;
  const data::RgbImage img = data::load_image_rgb(tmp.path + "/p.png");
  EXPECT_EQ(img.width, 2 * 224 + 3 * 4);  // 28 x 28 panels drawn 8x larger
  EXPECT_EQ(img.height, 224 + 2 * 4);
  EXPECT_NE(r.out.find("of the 28 x 28 grid"), std::string::npos) << r.out;
  // the weights each latent draws sum to one over the 784 pixels
  autograd::NoGradGuard no_grad;
  const Tensor probs = model.cross_attention_probs({{"inputs", Tensor::full({1, 28, 28}, 0.5f)}});
  ASSERT_EQ(probs.shape(), Shape({1, c.cross_attention_heads, 6, 784}));
  for (int64_t row = 0; row < c.cross_attention_heads * 6; ++row) {
    double sum = 0;
    for (int64_t j = 0; j < 784; ++j) sum += probs.f32()[row * 784 + j];
    EXPECT_NEAR(sum, 1.0, 1e-5) << row;
  }
}

}  // namespace
}  // namespace perceiver
