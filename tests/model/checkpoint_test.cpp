// Activation checkpointing (autograd/checkpoint.h, Module::set_activation_checkpointing): the
// loss and every parameter gradient equal those without it (dropout and drop path replayed from the saved
// Rng state, shared weights across blocks, several cross-attends), for the Perceiver classifier,
// a Hugging Face Perceiver IO fixture and ViT; the peak of live tensor memory in a training
// step goes down; inference is unaffected.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "parity/hf_parity_util.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/autograd/checkpoint.h"
#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/core/allocator.h"
#include "perceiver/models/image_classifier.h"
#include "perceiver/models/perceiver.h"
#include "perceiver/nn/perceiver_layer.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::randn;

struct StepResult {
  float loss = 0;
  std::map<std::string, std::vector<float>> grads;
  size_t peak_bytes = 0;  // peak of live tensor bytes during forward + backward
};

template <typename Model, typename Loss>
StepResult train_step(Model& model, bool checkpointing, const Loss& loss_of) {
  model.set_activation_checkpointing(checkpointing);
  model.visit_parameters([](const std::string&, Tensor& p) { p.zero_grad(); });
  reset_peak_memory();
  const size_t before = memory_stats().bytes_in_use;
  StepResult r;
  {
    Tensor loss = loss_of();
    autograd::backward(loss);
    r.loss = loss.item();
  }
  r.peak_bytes = memory_stats().peak_in_use - before;
  model.visit_parameters([&](const std::string& name, Tensor& p) {
    r.grads[name] = p.grad().defined() ? p.grad().to_vector() : std::vector<float>();
  });
  return r;
}

void expect_same_gradients(const StepResult& a, const StepResult& b, const std::string& what) {
  EXPECT_EQ(a.loss, b.loss) << what;
  ASSERT_EQ(a.grads.size(), b.grads.size()) << what;
  size_t nonzero = 0;
  for (const auto& [name, g] : a.grads) {
    const std::vector<float>& h = b.grads.at(name);
    ASSERT_EQ(g.size(), h.size()) << what << " " << name;
    std::vector<double> ref(h.begin(), h.end());
    EXPECT_TRUE(testing::all_close(g, ref, 1e-6, what + " grad " + name));
    for (float v : g) nonzero += v != 0.0f;
  }
  EXPECT_GT(nonzero, 0u) << what << ": all gradients are zero";
}

models::PerceiverConfig deep_config(float dropout) {
  models::PerceiverConfig c;
  c.image_size = {6, 5};
  c.max_resolution = {6, 5};
  c.num_fourier_bands = 3;
  c.num_latents = 8;
  c.d_latents = 16;
  c.cross_attention_heads = 3;  // input width 1 + 2 + 12 = 15
  c.self_attention_heads = 4;
  c.self_attends_per_block = 2;
  c.num_blocks = 3;
  c.num_cross_attends = 3;  // the second and third share weights
  c.num_classes = 4;
  c.dropout = dropout;
  c.drop_path = dropout > 0.0f ? 0.3f : 0.0f;  // stochastic depth replays from the same stream
  c.init_std = 0.2f;
  return c;
}

TEST(ActivationCheckpointing, PerceiverGradientsUnchangedWithDropoutAndDropPath) {
  models::Perceiver model(deep_config(0.1f), 3);
  model.train(true);
  const Tensor images = randn({3, 6, 5}, 11);
  const Tensor labels = Tensor::from_vector_i32({3}, {0, 3, 1});
  auto loss_of = [&] {
    Rng rng(42);  // the same dropout stream in both runs
    return ag::cross_entropy(model.forward(images, &rng), labels, 0.1f);
  };
  const StepResult plain = train_step(model, false, loss_of);
  const StepResult ckpt = train_step(model, true, loss_of);
  expect_same_gradients(ckpt, plain, "perceiver");
  EXPECT_LT(ckpt.peak_bytes, plain.peak_bytes) << "checkpointing did not lower the peak";
  std::printf("[ perceiver ] peak live tensor bytes: %zu plain, %zu checkpointed\n", plain.peak_bytes,
              ckpt.peak_bytes);
  // inference with the flag on records nothing and gives the same logits
  autograd::NoGradGuard no_grad;
  model.train(false);
  const Tensor a = model.forward(images, nullptr);
  model.set_activation_checkpointing(false);
  EXPECT_EQ(a.to_vector(), model.forward(images, nullptr).to_vector());
}

// drop path alone (no dropout to carry the stream): each example's branches are replayed
TEST(ActivationCheckpointing, PerceiverGradientsUnchangedWithDropPathAlone) {
  models::PerceiverConfig c = deep_config(0.0f);
  c.drop_path = 0.5f;
  models::Perceiver model(c, 4);
  model.train(true);
  const Tensor images = randn({8, 6, 5}, 12);
  const Tensor labels = Tensor::from_vector_i32({8}, {0, 3, 1, 2, 2, 0, 1, 3});
  auto loss_of = [&] {
    Rng rng(43);
    return ag::cross_entropy(model.forward(images, &rng), labels, 0.1f);
  };
  expect_same_gradients(train_step(model, true, loss_of), train_step(model, false, loss_of), "perceiver, drop path");
}

TEST(ActivationCheckpointing, HfPerceiverIoGradientsUnchanged) {
  testing::HfFixture fx = testing::load_hf_fixture("language-perceiver");
  testing::TempDir tmp;
  auto model = testing::load_perceiver_io_folder(testing::make_hub_folder(fx, tmp.path + "/lm"));
  model->train(true);
  auto loss_of = [&] { return model->loss(model->forward(fx.inputs), fx.inputs); };
  const StepResult plain = train_step(*model, false, loss_of);
  const StepResult ckpt = train_step(*model, true, loss_of);
  expect_same_gradients(ckpt, plain, "language-perceiver");
  EXPECT_NEAR(plain.loss, fx.grads.at("loss").item(), 1e-4 * std::max(1.0f, std::fabs(plain.loss)));
}

TEST(ActivationCheckpointing, VitGradientsUnchanged) {
  nlohmann::json cfg = {{"model",
                         {{"type", "vit"}, {"image_size", {8, 8}}, {"patch_size", 4},
                          {"hidden_size", 16}, {"num_hidden_layers", 3}, {"num_attention_heads", 2}, {"in_channels", 1},
                          {"intermediate_size", 32}, {"num_classes", 3}, {"dropout", 0.1}}}};
  std::unique_ptr<models::ImageClassifier> model = models::make_image_classifier(cfg["model"], 5);
  model->train(true);
  const Tensor images = randn({2, 8, 8}, 21);
  const Tensor labels = Tensor::from_vector_i32({2}, {2, 0});
  auto loss_of = [&] {
    Rng rng(7);
    return ag::cross_entropy(model->forward(images, &rng), labels, 0.0f);
  };
  const StepResult plain = train_step(*model, false, loss_of);
  const StepResult ckpt = train_step(*model, true, loss_of);
  expect_same_gradients(ckpt, plain, "vit");
}

// BoTNet blocks hold BatchNorms: the checkpointed step gives the same gradients and updates the
// running statistics exactly once (the re-run in backward normalises alike, updating nothing).
TEST(ActivationCheckpointing, BotNetGradientsAndRunningStatisticsUnchanged) {
  const nlohmann::json cfg = {{"type", "botnet"}, {"image_size", 28}, {"in_channels", 1}, {"num_classes", 3},
                              {"stem_chs", 8}, {"channels", {8, 16, 16, 32}}, {"depths", {1, 1, 2, 1}},
                              {"num_heads", 2}};
  auto run = [&](bool checkpointing, StepResult* out) {
    std::unique_ptr<models::ImageClassifier> model = models::make_image_classifier(cfg, 5);
    model->train(true);
    const Tensor images = randn({3, 28, 28}, 23);
    const Tensor labels = Tensor::from_vector_i32({3}, {2, 0, 1});
    *out = train_step(*model, checkpointing, [&] { return ag::cross_entropy(model->forward(images), labels, 0.0f); });
    std::map<std::string, std::vector<float>> buffers;
    model->visit_buffers([&](const std::string& name, Tensor& b) {
      buffers[name] = b.dtype() == DType::kF32 ? b.to_vector() : std::vector<float>{float(b.data<int32_t>()[0])};
    });
    return buffers;
  };
  StepResult plain, ckpt;
  const auto plain_buffers = run(false, &plain);
  const auto ckpt_buffers = run(true, &ckpt);
  expect_same_gradients(ckpt, plain, "botnet");
  EXPECT_LT(ckpt.peak_bytes, plain.peak_bytes) << "checkpointing did not lower the peak";
  EXPECT_EQ(ckpt_buffers, plain_buffers) << "running statistics or counts differ";
  EXPECT_EQ(plain_buffers.at("stages.3.0.conv1_1x1.bn.num_batches_tracked"), std::vector<float>{1.0f});
}

// A cross layer over more inputs than kv_chunk takes the chunked K/V path when checkpointed:
// the output and every gradient (layer parameters, latents, inputs) match the plain layer to
// float rounding (the chunk merge reorders sums), with a key mask; bf16 + grad still throws.
TEST(ActivationCheckpointing, ChunkedCrossLayerMatchesPlainLayer) {
  nn::PerceiverLayerConfig c;
  c.is_cross = true;
  c.q_dim = 12;
  c.kv_dim = 9;
  c.num_heads = 3;
  c.widening_factor = 2;
  c.init_std = 0.3f;
  c.kv_chunk = 8;  // 45 inputs -> 6 chunks, the last one ragged
  c = nn::resolve_layer_config(c);
  Rng init(3);
  nn::PerceiverLayer layer(c, init);
  Tensor x = randn({2, 5, 12}, 31), y = randn({2, 45, 9}, 32);
  x.set_requires_grad(true);
  y.set_requires_grad(true);
  Tensor mask = randn({2, 45}, 33, 0.5f);
  mask.f32()[7] = -1e9f;
  const Tensor w_out = randn({2, 5, 12}, 34);
  auto run = [&](bool ckpt) {
    layer.set_activation_checkpointing(ckpt);
    layer.visit_parameters([](const std::string&, Tensor& p) { p.zero_grad(); });
    x.zero_grad();
    y.zero_grad();
    const Tensor out = layer.forward(x, y, mask, nullptr);
    autograd::backward(ag::reshape(ag::mean(ag::reshape(ag::mul(out, w_out), {1, 120}), 1), {}));
    std::map<std::string, std::vector<float>> g;
    g["out"] = out.to_vector();
    g["x"] = x.grad().to_vector();
    g["y"] = y.grad().to_vector();
    layer.visit_parameters([&](const std::string& name, Tensor& p) {
      if (name.find("key.bias") == std::string::npos)  // exactly 0 in theory: rounding noise only
        g[name] = p.grad().to_vector();
    });
    return g;
  };
  const auto plain = run(false), chunked = run(true);
  for (const auto& [name, v] : plain) {
    const std::vector<double> ref(v.begin(), v.end());
    EXPECT_TRUE(testing::all_close(chunked.at(name), ref, testing::f32_tol(45 * 12, 32), "chunked " + name));
  }
  EXPECT_NE(chunked.at("out"), plain.at("out")) << "the chunked path did not run (identical rounding)";
  // mixed precision with checkpointing on: the plain (not chunked) checkpointed layer, in bf16
  layer.set_precision(Precision::kBF16);
  const Tensor out16 = layer.forward(x, y, mask, nullptr);
  const std::vector<double> ref(plain.at("out").begin(), plain.at("out").end());
  EXPECT_TRUE(testing::all_close(out16, ref, 8.0 / 256, "bf16 out"));
  EXPECT_NE(out16.to_vector(), plain.at("out")) << "the bf16 products were not used";
}

TEST(ActivationCheckpointing, SegmentWithoutGradIsPlainCall) {
  int calls = 0;
  ag::Segment fn = [&](const std::vector<Tensor>& in, Rng*) {
    ++calls;
    return ag::scale(in[0], 2.0f);
  };
  const Tensor x = randn({3}, 1);
  const Tensor y = ag::checkpoint(fn, {x}, nullptr, false);  // nothing needs a gradient
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(y.autograd_meta(), nullptr);
  Tensor xl = randn({3}, 2);
  xl.set_requires_grad(true);
  Tensor z = ag::checkpoint(fn, {xl}, nullptr, false);
  autograd::backward(ag::reshape(ag::mean(ag::reshape(z, {1, 3}), 1), {}));
  EXPECT_EQ(calls, 3);  // forward + recompute
  for (float g : xl.grad().to_vector()) EXPECT_FLOAT_EQ(g, 2.0f / 3.0f);
}

}  // namespace
}  // namespace perceiver
