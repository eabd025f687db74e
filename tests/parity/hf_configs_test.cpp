// Nothing is tied to the fixtures' sizes: the full-size hub configurations build exactly the hub
// state dicts (names, shapes, parameter counts of spec 9), and other sizes (odd images, other
// batch sizes, sequence lengths, grids, frame counts) run forward and backward with the output
// shapes HF gives.
#include <cmath>

#include "parity/hf_parity_util.h"
#include "perceiver/autograd/tape.h"

namespace perceiver {
namespace {

using models::perceiver_io::HfPerceiverConfig;
using models::perceiver_io::parse_hf_config;
using models::perceiver_io::PerceiverIO;
using models::perceiver_io::TensorMap;

HfPerceiverConfig config(const char* arch, nlohmann::json j) {
  j["architectures"] = {arch};
  return parse_hf_config(j, "test");
}

TEST(HfConfigs, FullSizeHubStateDicts) {
  {  // multimodal-perceiver: 183 entries, 19,858,855 parameters
    PerceiverIO m(config("PerceiverForMultimodalAutoencoding",
                         {{"num_latents", 784}, {"d_latents", 512}, {"d_model", 704}, {"num_blocks", 1},
                          {"num_self_attends_per_block", 8}, {"num_self_attention_heads", 8},
                          {"num_cross_attention_heads", 1}, {"num_labels", 700}}));
    EXPECT_EQ(m.state_dict().size(), 183u);
    EXPECT_EQ(m.num_parameters(), 19858855);
    std::map<std::string, Shape> shapes;
    for (auto& [n, t] : m.state_dict()) shapes[n] = t.shape();
    EXPECT_EQ(shapes.at("perceiver.input_preprocessor.padding.audio"), Shape({1, 303}));
    EXPECT_EQ(shapes.at("perceiver.input_preprocessor.padding.image"), Shape({1, 461}));
    EXPECT_EQ(shapes.at("perceiver.input_preprocessor.mask.label"), Shape({1, 704}));
    EXPECT_EQ(shapes.at("perceiver.decoder.padding.audio"), Shape({1, 641}));
    EXPECT_EQ(shapes.at("perceiver.decoder.padding.image"), Shape({1, 831}));
    EXPECT_EQ(shapes.at("perceiver.decoder.decoder.decoding_cross_attention.attention.self.query.weight"),
              Shape({512, 1026}));
    EXPECT_EQ(shapes.at("perceiver.decoder.modalities.label.decoder.output_position_encodings.position_embeddings"),
              Shape({1, 1024}));
  }
  {  // vision-perceiver-conv: 142 entries (3 buffers), 48,646,522 parameters
    PerceiverIO m(config("PerceiverForImageClassificationConvProcessing",
                         {{"num_latents", 512}, {"d_latents", 1024}, {"num_blocks", 8}, {"num_self_attends_per_block", 6},
                          {"num_self_attention_heads", 8}, {"num_cross_attention_heads", 1}, {"num_labels", 1000}}));
    EXPECT_EQ(m.state_dict().size(), 142u);
    EXPECT_EQ(m.num_parameters(), 48646522);
  }
}

Tensor randn(const Shape& s, Rng& rng) {
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = rng.normal();
  return t;
}

// Forward (eval) gives `expected` shapes; a train-mode loss and backward give finite gradients.
void run_config(const HfPerceiverConfig& cfg, const TensorMap& inputs, const std::map<std::string, Shape>& expected) {
  PerceiverIO model(cfg, 7);
  TensorMap logits = model.forward(inputs);
  ASSERT_EQ(logits.size(), expected.size()) << cfg.architecture;
  for (const auto& [name, shape] : expected) {
    ASSERT_TRUE(logits.count(name)) << cfg.architecture << " " << name;
    EXPECT_EQ(logits.at(name).shape(), shape) << cfg.architecture << " " << name;
    for (float v : logits.at(name).to_vector()) ASSERT_TRUE(std::isfinite(v)) << cfg.architecture;
  }
  model.train(true);
  Tensor loss = model.loss(model.forward(inputs), inputs);
  autograd::backward(loss);
  ASSERT_TRUE(std::isfinite(loss.item())) << cfg.architecture;
  int with_grad = 0;
  for (auto& [name, p] : model.named_parameters()) {
    if (!p.grad().defined()) continue;
    ++with_grad;
    for (float v : p.grad().to_vector()) ASSERT_TRUE(std::isfinite(v)) << name;
  }
  EXPECT_GT(with_grad, 10) << cfg.architecture;
}

TEST(HfConfigs, OtherSizesRunForwardAndBackward) {
  Rng rng(3);
  {  // masked LM: no qk/v channels set, 3 examples of 10 tokens, max 16 positions
    auto c = config("PerceiverForMaskedLM", {{"num_latents", 6}, {"d_latents", 32}, {"d_model", 24},
                                             {"num_self_attends_per_block", 2}, {"num_self_attention_heads", 4},
                                             {"num_cross_attention_heads", 2}, {"max_position_embeddings", 16}});
    std::vector<int32_t> ids(30), labels(48, -100);
    for (int i = 0; i < 30; ++i) ids[i] = static_cast<int32_t>(rng.below(262));
    labels[3] = 7, labels[20] = 100, labels[47] = 5;
    run_config(c, {{"inputs", Tensor::from_vector_i32({3, 10}, ids)}, {"labels", Tensor::from_vector_i32({3, 16}, labels)}},
               {{"logits", {3, 16, 262}}});
  }
  const nlohmann::json vision = {{"num_latents", 8}, {"d_latents", 16}, {"num_blocks", 3},
                                 {"num_self_attends_per_block", 1}, {"num_self_attention_heads", 2},
                                 {"num_cross_attention_heads", 1}, {"num_labels", 5},
                                 {"cross_attention_widening_factor", 2}, {"self_attention_widening_factor", 3}};
  const Tensor labels1 = Tensor::from_vector_i32({1}, {4}), labels3 = Tensor::from_vector_i32({3}, {0, 2, 4});
  {
    nlohmann::json j = vision;
    j["image_size"] = 4;
    run_config(config("PerceiverForImageClassificationLearned", j),
               {{"inputs", randn({1, 3, 4, 4}, rng)}, {"labels", labels1}}, {{"logits", {1, 5}}});
  }
  {  // num_blocks 0 (HF allows it): the cross-attention alone
    nlohmann::json j = vision;
    j["image_size"] = 4;
    j["num_blocks"] = 0;
    run_config(config("PerceiverForImageClassificationLearned", j),
               {{"inputs", randn({1, 3, 4, 4}, rng)}, {"labels", labels1}}, {{"logits", {1, 5}}});
  }
  {
    nlohmann::json j = vision;
    j["cross_attention_shape_for_attention"] = "q";
    run_config(config("PerceiverForImageClassificationFourier", j),
               {{"inputs", randn({3, 3, 7, 5}, rng)}, {"labels", labels3}}, {{"logits", {3, 5}}});
  }
  // odd image: conv 17x23 -> 9x12, pool -> 4x5 tokens
  run_config(config("PerceiverForImageClassificationConvProcessing", vision),
             {{"inputs", randn({3, 3, 17, 23}, rng)}, {"labels", labels3}}, {{"logits", {3, 5}}});
  run_config(config("PerceiverForOpticalFlow", {{"num_latents", 8}, {"d_latents", 16}, {"num_self_attends_per_block", 2},
                                                {"num_self_attention_heads", 4}, {"num_cross_attention_heads", 1},
                                                {"train_size", {4, 6}}}),
             {{"inputs", randn({1, 2, 27, 4, 6}, rng)}, {"target", randn({1, 4, 6, 2}, rng)}}, {{"logits", {1, 4, 6, 2}}});
  {  // multimodal: 2 frames of 8x8, 32 audio samples in 4 patches, 5 labels, every output decoded
    auto c = config("PerceiverForMultimodalAutoencoding",
                    {{"num_latents", 8}, {"d_latents", 16}, {"num_self_attends_per_block", 1},
                     {"num_self_attention_heads", 2}, {"num_cross_attention_heads", 1}, {"num_labels", 5},
                     {"num_frames", 2}, {"audio_samples_per_frame", 16}, {"samples_per_patch", 8}, {"image_size", 2},
                     {"output_shape", {1, 2, 8, 8}}, {"output_num_channels", 12}, {"_label_trainable_num_channels", 9}});
    run_config(c,
               {{"inputs.image", randn({1, 2, 3, 8, 8}, rng)}, {"inputs.audio", randn({1, 32, 1}, rng)},
                {"inputs.label", Tensor::zeros({1, 5})}, {"target.audio", randn({1, 32}, rng)},
                {"target.image", randn({1, 128, 3}, rng)}, {"target.label", randn({1, 5}, rng)}},
               {{"logits.audio", {1, 32}}, {"logits.image", {1, 128, 3}}, {"logits.label", {1, 5}}});
  }
}

}  // namespace
}  // namespace perceiver
