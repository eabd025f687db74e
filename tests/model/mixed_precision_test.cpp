// bf16 mixed-precision training (train.precision "bf16", Module::set_precision in training mode):
// the Perceiver's gradients stay within a stated distance of fp32's (and activation checkpointing
// recomputes them exactly); a model overfits a small batch as in fp32; the trainer runs it,
// keeps fp32 master weights, resumes bit-identically and refuses to resume with another precision.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/models/perceiver.h"
#include "perceiver/nn/layers.h"
#include "perceiver/ops/convert.h"
#include "perceiver/optim/optimizer.h"
#include "perceiver/train/checkpoint.h"
#include "perceiver/train/trainer.h"
#include "testing/compare.h"
#include "testing/overfit.h"
#include "testing/tiny_data.h"

namespace perceiver {
namespace {

models::PerceiverConfig small_config() {
  models::PerceiverConfig c;
  c.image_size = {8, 8};
  c.max_resolution = {8, 8};
  c.num_fourier_bands = 4;
  c.num_latents = 8;
  c.d_latents = 32;
  c.cross_attention_heads = 1;
  c.self_attention_heads = 4;
  c.self_attends_per_block = 2;
  c.num_classes = 10;
  c.init_std = 0.02f;
  return c;
}

// parameter name -> gradient after one forward/backward of a batch
std::map<std::string, std::vector<float>> gradients(models::Perceiver& m, const Tensor& x, const Tensor& y) {
  for (auto& [name, p] : m.named_parameters()) p.zero_grad();
  autograd::backward(ag::cross_entropy(m.forward(x), y, 0.0f));
  std::map<std::string, std::vector<float>> g;
  for (const auto& [name, p] : m.named_parameters()) g[name] = p.grad().to_vector();
  return g;
}

double relative_error(const std::vector<float>& got, const std::vector<float>& ref) {
  double d = 0, r = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    d += (static_cast<double>(got[i]) - ref[i]) * (static_cast<double>(got[i]) - ref[i]);
    r += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(d / std::max(r, 1e-300));
}

// Attention runs in bf16 only where each head's products pay for the conversions (>= 2^18
// multiply-adds); fp32 layers never switch.
TEST(MixedPrecision, AttentionPrecisionFollowsTheHeadSize) {
  EXPECT_EQ(nn::attention_precision(Precision::kBF16, 32, 32, 32), Precision::kF32);  // FMNIST self-attention
  EXPECT_EQ(nn::attention_precision(Precision::kBF16, 32, 784, 35), Precision::kBF16);  // its cross-attention
  EXPECT_EQ(nn::attention_precision(Precision::kBF16, 64, 64, 63), Precision::kF32);    // just below 2^18
  EXPECT_EQ(nn::attention_precision(Precision::kBF16, 64, 64, 64), Precision::kBF16);   // exactly 2^18
  EXPECT_EQ(nn::attention_precision(Precision::kF32, 256, 2048, 64), Precision::kF32);
}

TEST(MixedPrecision, PerceiverGradientsWithinFourPercentOfF32) {
  const models::PerceiverConfig c = small_config();
  models::Perceiver f32(c, 3), mixed(c, 3);  // the same initial weights
  mixed.set_precision(Precision::kBF16);
  const Tensor x = testing::randn({16, 8, 8}, 5);
  std::vector<int32_t> labels(16);
  for (int i = 0; i < 16; ++i) labels[i] = (i * 3) % 10;
  const Tensor y = Tensor::from_vector_i32({16}, labels);
  const auto gf = gradients(f32, x, y), gm = gradients(mixed, x, y);
  ASSERT_EQ(gf.size(), gm.size());
  double worst = 0;
  std::string worst_name;
  for (const auto& [name, g] : gf) {
    ASSERT_EQ(gm.at(name).size(), g.size()) << name;
    // a key bias shifts every score of a query equally: its exact gradient is 0 and both
    // precisions give rounding noise only
    if (name.size() > 8 && name.compare(name.size() - 8, 8, "key.bias") == 0) continue;
    const double e = relative_error(gm.at(name), g);
    if (e > worst) worst = e, worst_name = name;
  }
  // each gradient tensor within 4% (relative L2) of fp32; bf16 units are 0.4%, so a wrong
  // product or a stale weight copy shows as O(1)
  std::printf("bf16 vs fp32: worst relative gradient error %.4f (%s)\n", worst, worst_name.c_str());
  EXPECT_LT(worst, 0.04) << "worst gradient: " << worst_name;
  EXPECT_GT(worst, 0.0) << "the bf16 products were not used";
  // the master weights and their gradients stay fp32
  for (const auto& [name, p] : mixed.named_parameters()) {
    EXPECT_EQ(p.dtype(), DType::kF32) << name;
    EXPECT_EQ(p.grad().dtype(), DType::kF32) << name;
  }
  // activation checkpointing recomputes the bf16 forward exactly: the same gradients bit for bit
  models::Perceiver ckpt(c, 3);
  ckpt.set_precision(Precision::kBF16);
  ckpt.set_activation_checkpointing(true);
  const auto gc = gradients(ckpt, x, y);
  for (const auto& [name, g] : gm) EXPECT_EQ(gc.at(name), g) << name;
}

TEST(MixedPrecision, OverfitsASmallBatchAndWeightUpdatesReachTheForward) {
  models::PerceiverConfig c = small_config();
  models::Perceiver model(c, 3);
  model.set_precision(Precision::kBF16);
  const int64_t b = 32;
  const Tensor x = testing::randn({b, 8, 8}, 5);
  std::vector<float> before;
  {
    autograd::NoGradGuard no_grad;
    model.train(false);
    before = model.forward(x).to_vector();  // inference remembers bf16(W) of the initial weights
    model.train(true);
  }
  std::vector<int32_t> labels(b);
  for (int64_t i = 0; i < b; ++i) labels[i] = static_cast<int32_t>((i * 7) % 10);
  const int64_t correct = testing::fit_batch(model, x, labels);
  EXPECT_EQ(correct, b) << "the bf16-trained model did not fit 32 random images";
  // inference after training multiplies by the rounding of the trained fp32 weights (the copies
  // remembered before training are stale and not used), as a fresh model loaded with them does
  autograd::NoGradGuard no_grad;
  model.train(false);
  const std::vector<float> after = model.forward(x).to_vector();
  EXPECT_NE(before, after);
  std::map<std::string, Tensor> trained;
  for (const auto& [name, t] : model.state_dict()) trained[name] = t;
  models::Perceiver fresh(c, 99);
  fresh.load_state_dict(trained, "trained");
  fresh.set_precision(Precision::kBF16);
  fresh.train(false);
  EXPECT_EQ(fresh.forward(x).to_vector(), after);
}

// Every weight is rounded to bf16 once per update, by AdamW's own pass: after a step, the next
// forward and backward (and a second forward) multiply by the copies the optimizer wrote,
// without rounding again; they are the rounding of the updated fp32 weights.
TEST(MixedPrecision, WeightsAreRoundedOncePerUpdate) {
  models::PerceiverConfig c = small_config();
  models::Perceiver model(c, 4);
  model.set_precision(Precision::kBF16);
  model.train(true);
  const Tensor x = testing::randn({6, 8, 8}, 8);
  const Tensor y = Tensor::from_vector_i32({6}, {1, 2, 3, 4, 5, 6});
  auto opt = optim::make_optimizer("adamw", model.named_parameters());
  std::map<std::string, const void*> copies;
  for (int step = 0; step < 3; ++step) {
    opt->zero_grad();
    autograd::backward(ag::cross_entropy(model.forward(x), y, 0.0f));
    if (step > 0)  // the forward and backward used the optimizer's copies
      for (const auto& [name, p] : model.named_parameters())
        if (copies.count(name)) EXPECT_EQ(p.remembered_copy(DType::kBF16).cdata(), copies[name]) << name;
    opt->step(1e-3f);
    copies.clear();
    for (const auto& [name, p] : model.named_parameters()) {
      const Tensor copy = p.remembered_copy(DType::kBF16);
      if (!copy.defined()) continue;
      copies[name] = copy.cdata();
      const Tensor expect = ops::to_bf16(p);
      EXPECT_EQ(0, std::memcmp(copy.cdata(), expect.cdata(), expect.nbytes())) << name;
    }
    // every Linear weight (the query/key/value/output projections and the MLPs) is used in bf16
    EXPECT_GE(copies.size(), 4u * c.self_attends_per_block + 4u);
  }
}

train::RunConfig tiny_run(const std::string& data_dir) {
  train::RunConfig rc = train::parse_run_config(nlohmann::json::parse(R"({
    "model": {"num_latents": 4, "d_latents": 16, "num_fourier_bands": 2, "self_attention_heads": 2,
              "self_attends_per_block": 1, "dropout": 0.1},
    "train": {"epochs": 2, "batch_size": 16, "warmup_steps": 2, "log_every": 1, "seed": 5, "precision": "bf16"},
    "data": {"max_shift": 2}})"));
  rc.data.dir = data_dir;
  return rc;
}

TEST(MixedPrecision, TrainerRunsResumesBitIdenticallyAndKeepsThePrecision) {
  testing::TempDir tmp;
  testing::make_tiny_fashion_mnist(tmp.path, 56, 20);
  train::RunConfig rc = tiny_run(tmp.path);
  train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = tmp.path + "/full";
  const train::TrainResult full = train::run_training(rc, opt);
  EXPECT_EQ(full.steps, 8);
  EXPECT_EQ(full.last_eval.count, 20);
  // interrupted after 3 steps (with activation checkpointing: the same numbers), then resumed
  opt.out_dir = tmp.path + "/split";
  train::RunConfig first = rc;
  first.train.max_steps = 3;
  first.train.activation_checkpointing = true;
  EXPECT_TRUE(train::run_training(first, opt).interrupted);
  opt.resume = true;
  train::run_training(rc, opt);
  const io::SafetensorsFile a = io::load_safetensors(tmp.path + "/full/model.safetensors");
  const io::SafetensorsFile b = io::load_safetensors(tmp.path + "/split/model.safetensors");
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    EXPECT_EQ(t.dtype(), DType::kF32) << name << ": the master weights are saved in fp32";
    EXPECT_EQ(t.to_vector(), b.tensors.at(name).to_vector()) << name << " differs after resume";
  }
  // the checkpoint records the precision, and resuming with another one is refused
  EXPECT_EQ(train::read_checkpoint(tmp.path + "/full/checkpoint.safetensors").config.train.precision, "bf16");
  train::RunConfig other = rc;
  other.train.precision = "f32";
  other.train.epochs = 3;
  opt.out_dir = tmp.path + "/full";
  try {
    train::run_training(other, opt);
    ADD_FAILURE() << "resuming a bf16 run in f32 should be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("precision"), std::string::npos) << e.what();
  }
  // and bf16 differs from an fp32 run of the same config (the products really are bf16)
  train::RunConfig f32 = rc;
  f32.train.precision = "f32";
  opt.resume = false;
  opt.out_dir = tmp.path + "/f32";
  train::run_training(f32, opt);
  const io::SafetensorsFile c = io::load_safetensors(tmp.path + "/f32/model.safetensors");
  bool differs = false;
  for (const auto& [name, t] : a.tensors) differs = differs || t.to_vector() != c.tensors.at(name).to_vector();
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace perceiver
