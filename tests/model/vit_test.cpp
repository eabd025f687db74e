// The ViT classifier beyond the HF fixture: HF parameter names and shapes for other sizes,
// non-square images, other (and non-square) patch sizes, mean pooling, channels-last and grey
// inputs, end-to-end gradients against finite differences (also through position
// interpolation), the position-interpolation rule (identity on the configured grid, hand-computed
// bicubic values, non-square grids), and config validation errors for both config sources.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>

#include "kernels/reference/interpolate.h"
#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/models/image_classifier.h"
#include "perceiver/models/vit/vit.h"
#include "testing/compare.h"
#include "testing/model_gradcheck.h"

namespace perceiver {
namespace {

using models::ViT;
using models::ViTConfig;

ViTConfig tiny_config() {
  ViTConfig c;
  c.image_size = {12, 20};  // non-square: a 3 x 5 patch grid
  c.patch_size = {4, 4};
  c.in_channels = 3;
  c.hidden_size = 12;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 3;
  c.intermediate_size = 20;
  c.num_classes = 5;
  c.init_std = 0.3f;  // larger weights make gradients less trivial
  return c;
}

// Sets every parameter to a non-trivial value (biases, LayerNorm affine, cls token included).
void randomise(ViT& model, uint64_t seed, float scale) {
  model.visit_parameters([&](const std::string&, Tensor& p) { p.copy_from(testing::randn(p.shape(), seed++, scale)); });
}

TEST(ViT, ParametersUseHfNamesAndShapes) {
  ViTConfig c = tiny_config();
  c.qkv_bias = false;
  ViT model(c, 0);
  std::map<std::string, Shape> names;
  for (auto& [name, p] : model.named_parameters()) names[name] = p.shape();
  EXPECT_EQ(names.at("vit.embeddings.cls_token"), (Shape{1, 1, 12}));
  EXPECT_EQ(names.at("vit.embeddings.position_embeddings"), (Shape{1, 16, 12}));
  EXPECT_EQ(names.at("vit.embeddings.patch_embeddings.projection.weight"), (Shape{12, 3, 4, 4}));
  EXPECT_EQ(names.at("vit.embeddings.patch_embeddings.projection.bias"), (Shape{12}));
  EXPECT_EQ(names.at("vit.encoder.layer.1.attention.attention.query.weight"), (Shape{12, 12}));
  EXPECT_EQ(names.count("vit.encoder.layer.1.attention.attention.query.bias"), 0u);  // qkv_bias false
  EXPECT_EQ(names.at("vit.encoder.layer.0.attention.output.dense.bias"), (Shape{12}));
  EXPECT_EQ(names.at("vit.encoder.layer.0.intermediate.dense.weight"), (Shape{20, 12}));
  EXPECT_EQ(names.at("vit.encoder.layer.0.output.dense.weight"), (Shape{12, 20}));
  EXPECT_EQ(names.at("vit.encoder.layer.1.layernorm_before.weight"), (Shape{12}));
  EXPECT_EQ(names.at("vit.encoder.layer.1.layernorm_after.bias"), (Shape{12}));
  EXPECT_EQ(names.at("vit.layernorm.weight"), (Shape{12}));
  EXPECT_EQ(names.at("classifier.weight"), (Shape{5, 12}));
  // 4 embedding tensors, 2 x (3 q/k/v weights + 2 + 2 + 2 dense + 4 LayerNorm) layer tensors,
  // 2 final LayerNorm + 2 classifier tensors.
  EXPECT_EQ(names.size(), 4u + 2 * 13 + 4);
  const int64_t d = 12, layer = 3 * d * d + (d * d + d) + (20 * d + 20) + (d * 20 + d) + 4 * d;
  EXPECT_EQ(model.num_parameters(), d + 16 * d + (d * 48 + d) + 2 * layer + 2 * d + (5 * d + 5));
}

double loss_value(const std::function<Tensor()>& logits, const Tensor& labels) {
  autograd::NoGradGuard no_grad;
  return ag::cross_entropy(logits(), labels, 0.0f).item();
}

// Every parameter tensor: the analytic gradient of the whole model against central finite
// differences (float32 forward, so the step and tolerance are those of float).
void check_model_gradients(ViT& model, const std::function<Tensor()>& logits, const Tensor& labels) {
  model.visit_parameters([](const std::string&, Tensor& p) { p.zero_grad(); });
  autograd::backward(ag::cross_entropy(logits(), labels, 0.0f));
  const float h = 1e-2f;
  for (auto& [name, p] : model.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name << " got no gradient";
    const std::vector<float> analytic = p.grad().to_vector();
    float* w = p.f32();
    const int64_t n = p.numel(), stride = std::max<int64_t>(1, n / 5);  // up to 5 entries per tensor
    std::vector<float> got;
    std::vector<double> want;
    for (int64_t i = 0; i < n; i += stride) {
      const float orig = w[i];
      w[i] = orig + h;
      const double lp = loss_value(logits, labels);
      w[i] = orig - h;
      const double lm = loss_value(logits, labels);
      w[i] = orig;
      got.push_back(analytic[i]);
      want.push_back((lp - lm) / (2 * h));
    }
    double max_ref = 0;
    for (double v : want) max_ref = std::max(max_ref, std::fabs(v));
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_NEAR(got[i], want[i], 0.03 * std::fabs(want[i]) + 0.01 * max_ref + 2e-4) << name << " entry " << i;
  }
  // Each tensor along its own gradient to 0.05%, which a 0.1% error fails (testing/model_gradcheck.h).
  const double l0 = loss_value(logits, labels);
  const auto results = testing::directional_gradient_check(
      model.named_parameters(), [&] { return loss_value(logits, labels); }, 0.05, 5e-4, testing::kF32Eps * std::fabs(l0));
  EXPECT_TRUE(testing::directional_gradients_match(results, 5e-4, results.size() / 2));
}

TEST(ViT, NonSquareImageNchwGradientsMatchFiniteDifferences) {
  ViT model(tiny_config(), 1);
  randomise(model, 100, 0.3f);
  const Tensor x = testing::randn({2, 3, 12, 20}, 2);
  const Tensor y = Tensor::from_vector_i32({2}, {4, 1});
  models::ViTTrace trace;
  const Tensor logits = model.forward_pixels(x, &trace);
  EXPECT_EQ(logits.shape(), (Shape{2, 5}));
  EXPECT_EQ(trace.patch_embeddings.shape(), (Shape{2, 15, 12}));
  EXPECT_EQ(trace.embeddings.shape(), (Shape{2, 16, 12}));
  ASSERT_EQ(trace.hidden_states.size(), 2u);
  const auto m = trace.to_map();
  EXPECT_EQ(m.at("attention_block_output_each_layer").shape(), (Shape{2, 2, 16, 12}));
  EXPECT_EQ(m.at("hidden_states_after_each_layer").shape(), (Shape{2, 2, 16, 12}));
  EXPECT_EQ(m.at("final_layernorm_output").shape(), (Shape{2, 16, 12}));
  check_model_gradients(model, [&] { return model.forward_pixels(x); }, y);
}

TEST(ViT, NonSquarePatchMeanPoolingGreyGradientsMatchFiniteDifferences) {
  ViTConfig c = tiny_config();
  c.image_size = {9, 8};
  c.patch_size = {3, 2};  // 3 x 4 grid
  c.in_channels = 1;
  c.pooling = "mean";
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.init = "lecun";
  ViT model(c, 3);
  randomise(model, 200, 0.3f);
  const Tensor x = testing::randn({3, 9, 8}, 4);
  const Tensor y = Tensor::from_vector_i32({3}, {0, 2, 4});
  EXPECT_EQ(model.forward(x).shape(), (Shape{3, 5}));
  // (B, H, W) is the NCHW input with C = 1.
  EXPECT_EQ(model.forward(x).to_vector(), model.forward_pixels(x.reshape({3, 1, 9, 8})).to_vector());
  check_model_gradients(model, [&] { return model.forward(x); }, y);
}

TEST(ViT, InterpolatedPositionsGradientsMatchFiniteDifferences) {
  ViTConfig c = tiny_config();
  c.num_hidden_layers = 1;
  ViT model(c, 5);
  randomise(model, 300, 0.3f);
  const Tensor x = testing::randn({2, 3, 17, 13}, 6);  // a 4 x 3 grid instead of 3 x 5
  const Tensor y = Tensor::from_vector_i32({2}, {3, 0});
  models::ViTTrace trace;
  EXPECT_EQ(model.forward_pixels(x, &trace).shape(), (Shape{2, 5}));
  EXPECT_EQ(trace.embeddings.shape(), (Shape{2, 13, 12}));
  check_model_gradients(model, [&] { return model.forward_pixels(x); }, y);
}

TEST(ViT, ChannelsLastImagesMatchNchwPixels) {
  ViT model(tiny_config(), 7);
  const Tensor nhwc = testing::randn({2, 12, 20, 3}, 8);
  Tensor nchw = Tensor::empty({2, 3, 12, 20});
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 12 * 20; ++i)
      for (int64_t ch = 0; ch < 3; ++ch) nchw.f32()[(b * 3 + ch) * 240 + i] = nhwc.f32()[(b * 240 + i) * 3 + ch];
  EXPECT_EQ(model.forward(nhwc).to_vector(), model.forward_pixels(nchw).to_vector());
  EXPECT_THROW(model.forward(testing::randn({2, 12, 20}, 9)), Error);  // 3 channels needed
  EXPECT_THROW(model.forward_pixels(testing::randn({2, 1, 12, 20}, 9)), Error);
  EXPECT_THROW(model.forward_pixels(testing::randn({2, 3, 3, 20}, 9)), Error);  // smaller than a patch
}

// --- Position-embedding interpolation (HF interpolate_pos_encoding) ---

TEST(ViTPositions, ConfiguredGridIsTheTableItself) {
  ViT model(tiny_config(), 10);
  const Tensor pos = model.position_embeddings(3, 5);
  EXPECT_EQ(pos.shape(), (Shape{16, 12}));
  Tensor table;
  for (auto& [name, p] : model.named_parameters())
    if (name == "vit.embeddings.position_embeddings") table = p;
  EXPECT_EQ(pos.to_vector(), table.to_vector());
  // Trailing pixels that do not fill a patch are dropped: a 15 x 23 input has the 3 x 5 grid, no
  // interpolation, and the logits of its top-left 12 x 20 crop.
  const Tensor big = testing::randn({1, 3, 15, 23}, 11);
  Tensor crop = Tensor::empty({1, 3, 12, 20});
  for (int64_t ch = 0; ch < 3; ++ch)
    for (int64_t i = 0; i < 12; ++i)
      for (int64_t j = 0; j < 20; ++j) crop.f32()[(ch * 12 + i) * 20 + j] = big.f32()[(ch * 15 + i) * 23 + j];
  autograd::NoGradGuard no_grad;
  EXPECT_EQ(model.forward_pixels(big).to_vector(), model.forward_pixels(crop).to_vector());
}

// A model whose position table holds `rows` (one value per patch position, every channel) on a
// grid_h x grid_w grid, and `cls` in the CLS row.
std::unique_ptr<ViT> model_with_positions(int64_t grid_h, int64_t grid_w, const std::vector<float>& rows, float cls) {
  ViTConfig c;
  c.image_size = {grid_h * 2, grid_w * 2};
  c.patch_size = {2, 2};
  c.hidden_size = 4;
  c.num_attention_heads = 1;
  c.num_hidden_layers = 0;
  auto model = std::make_unique<ViT>(c, 0);
  model->visit_parameters([&](const std::string& name, Tensor& p) {
    if (name != "vit.embeddings.position_embeddings") return;
    for (int64_t t = 0; t <= grid_h * grid_w; ++t)
      for (int64_t k = 0; k < 4; ++k) p.f32()[t * 4 + k] = (t == 0 ? cls : rows[t - 1]) * float(k + 1);
  });
  return model;
}

TEST(ViTPositions, HandComputedBicubicValues) {
  // 1 x 2 grid [0, 1] -> 1 x 4: PyTorch's bicubic gives [-0.10546875, 0.2265625, 0.7734375,
  // 1.10546875] (see tests/ops/interpolate_test.cpp for the arithmetic); channel k is scaled by k + 1.
  const std::vector<float> v = {-0.10546875f, 0.2265625f, 0.7734375f, 1.10546875f};
  const auto row = model_with_positions(1, 2, {0, 1}, 7);
  const std::vector<float> p = row->position_embeddings(1, 4).to_vector();
  ASSERT_EQ(p.size(), 5u * 4);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(p[k], 7.0f * (k + 1)) << "CLS row is kept";
  for (int j = 0; j < 4; ++j)
    for (int k = 0; k < 4; ++k) EXPECT_FLOAT_EQ(p[(1 + j) * 4 + k], v[j] * (k + 1)) << j << "," << k;
  // 2 x 2 grid [[0, 1], [2, 3]] -> 4 x 4 (value col + 2 row is reproduced exactly: v[j] + 2 v[i])
  // and -> non-square 1 x 4 (each output row averages the two rows: 1 + v[j]).
  const auto grid = model_with_positions(2, 2, {0, 1, 2, 3}, -1);
  const std::vector<float> g = grid->position_embeddings(4, 4).to_vector();
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) EXPECT_FLOAT_EQ(g[(1 + i * 4 + j) * 4 + 2], 3.0f * (v[j] + 2 * v[i])) << i << "," << j;
  const std::vector<float> n = grid->position_embeddings(1, 4).to_vector();
  for (int j = 0; j < 4; ++j) EXPECT_FLOAT_EQ(n[(1 + j) * 4], 1.0f + v[j]) << j;
}

TEST(ViTPositions, NonSquareGridsFollowTheBicubicReference) {
  // 3 x 5 -> 4 x 7 and 3 x 5 -> 6 x 2: the patch rows, taken as a (D, 3, 5) map, resampled by the
  // double reference and flattened row-major again.
  ViT model(tiny_config(), 12);
  randomise(model, 400, 1.0f);
  Tensor table;
  for (auto& [name, p] : model.named_parameters())
    if (name == "vit.embeddings.position_embeddings") table = p;
  const int64_t d = 12;
  for (auto [oh, ow] : {std::pair<int64_t, int64_t>{4, 7}, {6, 2}}) {
    std::vector<double> maps(d * 15), out(d * oh * ow);
    for (int64_t t = 0; t < 15; ++t)
      for (int64_t k = 0; k < d; ++k) maps[k * 15 + t] = table.f32()[(1 + t) * d + k];
    ref::bicubic_forward(out.data(), maps.data(), ref::ResampleShape{d, 3, 5, oh, ow, false});
    std::vector<double> want(d * (1 + oh * ow));
    for (int64_t k = 0; k < d; ++k) want[k] = table.f32()[k];
    for (int64_t t = 0; t < oh * ow; ++t)
      for (int64_t k = 0; k < d; ++k) want[(1 + t) * d + k] = out[k * oh * ow + t];
    const Tensor got = model.position_embeddings(oh, ow);
    EXPECT_EQ(got.shape(), (Shape{1 + oh * ow, d}));
    EXPECT_TRUE(testing::all_close(got, want, testing::f32_tol(16 * 5), "positions"));
  }
}

// --- Configuration ---

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(ViTConfig, RunConfigRoundTripsAndBuildsThroughTheFactory) {
  const nlohmann::json j = {{"type", "vit"},       {"image_size", 28},       {"patch_size", 7},
                            {"hidden_size", 32},   {"num_hidden_layers", 1}, {"num_attention_heads", 2},
                            {"intermediate_size", 64}, {"pooling", "mean"}};
  const nlohmann::json n = models::normalize_image_classifier_config(j);
  EXPECT_EQ(n.at("image_size"), nlohmann::json({28, 28}));
  EXPECT_EQ(n.at("patch_size"), nlohmann::json({7, 7}));
  EXPECT_EQ(models::normalize_image_classifier_config(n), n);  // normalised form is a fixed point
  auto model = models::make_image_classifier(n, 0);
  EXPECT_EQ(model->config_json(), n);
  EXPECT_EQ(model->forward(testing::randn({2, 28, 28}, 1)).shape(), (Shape{2, 10}));
  EXPECT_NE(model->named_parameters().front().first.find("vit.embeddings"), std::string::npos);
}

TEST(ViTConfig, RunConfigErrorsNameTheKey) {
  auto parse = [](const nlohmann::json& j) { return error_of([&] { models::normalize_image_classifier_config(j); }); };
  EXPECT_NE(parse({{"type", "vit"}, {"hidden_sise", 3}}).find("unknown key 'hidden_sise'"), std::string::npos);
  EXPECT_NE(parse({{"type", "vit"}, {"hidden_size", "64"}}).find("model.hidden_size: expected an integer"),
            std::string::npos);
  EXPECT_NE(parse({{"type", "vit"}, {"num_attention_heads", 0}}).find("model.num_attention_heads"), std::string::npos);
  EXPECT_NE(parse({{"type", "vit"}, {"pooling", "max"}}).find("model.pooling: expected one of \"cls\", \"mean\""),
            std::string::npos);
  EXPECT_NE(parse({{"type", "vit"}, {"image_size", {28, 28, 1}}}).find("model.image_size"), std::string::npos);
  EXPECT_NE(parse({{"type", "vit"}, {"dropout", 1.5}}).find("model.dropout"), std::string::npos);
  EXPECT_NE(parse({{"type", "vit"}, {"hidden_size", 30}, {"num_attention_heads", 4}})
                .find("hidden_size (30) must be divisible by num_attention_heads (4)"),
            std::string::npos);
  EXPECT_NE(parse({{"type", "vit"}, {"image_size", {28, 6}}, {"patch_size", 7}}).find("exceeds image_size 6"),
            std::string::npos);
  EXPECT_NE(parse({{"type", "vits"}}).find("model.type: expected one of \"perceiver\", \"vit\""), std::string::npos);
}

nlohmann::json hub_config() {
  return {{"architectures", {"ViTForImageClassification"}},
          {"model_type", "vit"},
          {"image_size", 32},
          {"patch_size", 8},
          {"num_channels", 3},
          {"hidden_size", 64},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4},
          {"intermediate_size", 256},
          {"hidden_act", "gelu"},
          {"layer_norm_eps", 1e-12},
          {"qkv_bias", true},
          {"transformers_version", "4.40.0"},
          {"id2label", {{"0", "cat"}, {"1", "dog"}, {"2", "fish"}}}};
}

TEST(ViTConfig, HubConfigDefaultsAndRoundTrip) {
  ViTConfig c = models::parse_hf_vit_config(hub_config(), "config.json");
  EXPECT_EQ(c.num_classes, 3);
  EXPECT_EQ(c.id2label, (std::vector<std::string>{"cat", "dog", "fish"}));
  EXPECT_EQ(models::parse_hf_vit_config(c.to_hub_json(), "again").to_json(), c.to_json());
  // Absent keys take ViTConfig's defaults (google/vit-base-patch16-224 sizes), num_labels 2.
  const ViTConfig d = models::parse_hf_vit_config({{"model_type", "vit"}}, "bare");
  EXPECT_EQ(d.image_size, (std::vector<int64_t>{224, 224}));
  EXPECT_EQ(d.hidden_size, 768);
  EXPECT_EQ(d.num_hidden_layers, 12);
  EXPECT_EQ(d.num_classes, 2);
  nlohmann::json rect = hub_config();
  rect["image_size"] = {24, 40};
  rect.erase("id2label");
  rect["num_labels"] = 7;
  c = models::parse_hf_vit_config(rect, "rect");
  EXPECT_EQ(c.grid_h(), 3);
  EXPECT_EQ(c.grid_w(), 5);
  EXPECT_EQ(c.num_classes, 7);
  c.pooling = "mean";
  EXPECT_NE(error_of([&] { c.to_hub_json(); }).find("pooling"), std::string::npos);
}

TEST(ViTConfig, HubConfigErrorsNameTheField) {
  auto parse = [](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = hub_config();
    edit(j);
    return error_of([&] { models::parse_hf_vit_config(j, "config.json"); });
  };
  EXPECT_NE(parse([](auto& j) { j["hidden_act"] = "relu"; }).find("config.json: hidden_act: expected \"gelu\""),
            std::string::npos);
  EXPECT_NE(parse([](auto& j) { j["model_type"] = "perceiver"; }).find("model_type: expected \"vit\""),
            std::string::npos);
  EXPECT_NE(parse([](auto& j) { j["architectures"] = {"ViTForMaskedImageModeling"}; }).find("architectures"),
            std::string::npos);
  EXPECT_NE(parse([](auto& j) { j["image_size"] = "224"; }).find("image_size: expected an integer or a list"),
            std::string::npos);
  EXPECT_NE(parse([](auto& j) { j["num_hidden_layers"] = -1; }).find("num_hidden_layers"), std::string::npos);
  EXPECT_NE(parse([](auto& j) { j["qkv_bias"] = 1; }).find("qkv_bias: expected true or false"), std::string::npos);
  EXPECT_NE(parse([](auto& j) { j["id2label"] = {{"0", "a"}, {"2", "b"}}; }).find("id2label"), std::string::npos);
  EXPECT_NE(parse([](auto& j) { j["num_attention_heads"] = 5; }).find("must be divisible"), std::string::npos);
  EXPECT_NE(parse([](auto& j) { j["patch_size"] = 64; }).find("exceeds image_size"), std::string::npos);
  EXPECT_FALSE(models::is_hf_vit_config({{"model_type", "perceiver"}}));
  EXPECT_TRUE(models::is_hf_vit_config(hub_config()));
}

TEST(ViTConfig, AttentionDropoutCannotBeTrained) {
  nlohmann::json j = hub_config();
  j["num_hidden_layers"] = 1;
  j["attention_probs_dropout_prob"] = 0.1;
  ViT model(models::parse_hf_vit_config(j, "config.json"), 0);
  const Tensor x = testing::randn({1, 3, 32, 32}, 1);
  model.train(false);
  EXPECT_EQ(model.forward_pixels(x).shape(), (Shape{1, 3}));  // eval mode: dropout is inactive
  model.train(true);
  EXPECT_NE(error_of([&] { model.forward_pixels(x); }).find("attention_probs_dropout_prob"), std::string::npos);
}

}  // namespace
}  // namespace perceiver
