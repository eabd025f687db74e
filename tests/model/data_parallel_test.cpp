// Batch slices on threads (train/data_parallel.h, issue 18): a step split into slices gives the
// whole-batch gradients within float rounding (also with activation checkpointing, whose nested
// backward must land in the slice's own gradients, and for a masked LM whose slices hold unequal
// numbers of masked bytes), the same bits from run to run, and the rule that picks the slice count.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/core/parallel.h"
#include "perceiver/models/perceiver.h"
#include "perceiver/models/registry.h"
#include "perceiver/train/data_parallel.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using Gradients = std::map<std::string, std::vector<float>>;

// Runs forward_backward from zeroed gradients and returns (loss, gradients by name).
std::pair<train::StepLoss, Gradients> step(models::Model& m, const models::TensorMap& batch, int slices,
                                           const train::SliceLoss& loss) {
  for (auto& [name, p] : m.named_parameters()) p.zero_grad();
  Rng rng(7, 1);
  train::StepLoss r = train::forward_backward(batch, slices, rng, loss);
  Gradients g;
  for (const auto& [name, p] : m.named_parameters()) g[name] = p.grad().defined() ? p.grad().to_vector() : std::vector<float>();
  return {r, g};
}

// Largest per-tensor L2 distance ||got - ref|| / ||ref||, naming the tensor. A tensor whose
// exact gradient is zero (a key bias: softmax ignores a shift shared by all keys) holds rounding
// noise only, so the denominator is at least 1e-3 of the whole gradient's norm.
std::pair<double, std::string> worst_relative(const Gradients& got, const Gradients& ref) {
  double all = 0;
  for (const auto& [name, r] : ref)
    for (float v : r) all += static_cast<double>(v) * v;
  std::pair<double, std::string> worst{0.0, ""};
  for (const auto& [name, r] : ref) {
    const std::vector<float>& g = got.at(name);
    EXPECT_EQ(g.size(), r.size()) << name;
    if (g.size() != r.size()) return {INFINITY, name};
    double d = 0, n = 0;
    for (size_t i = 0; i < r.size(); ++i) {
      d += (static_cast<double>(g[i]) - r[i]) * (static_cast<double>(g[i]) - r[i]);
      n += static_cast<double>(r[i]) * r[i];
    }
    const double rel = std::sqrt(d / std::max(n, 1e-6 * all + 1e-300));
    if (rel > worst.first) worst = {rel, name};
  }
  return worst;
}

models::PerceiverConfig small_config() {
  models::PerceiverConfig c;
  c.image_size = {8, 8};
  c.max_resolution = {8, 8};
  c.num_fourier_bands = 4;
  c.num_latents = 8;
  c.d_latents = 32;
  c.cross_attention_heads = 2;
  c.cross_attention_shape_for_attention = "q";  // q/k width 32, split in two heads
  c.self_attention_heads = 4;
  c.self_attends_per_block = 2;
  c.num_cross_attends = 2;  // the second cross-attend shares the first's weights: fan-in of gradients
  c.num_classes = 10;
  c.init_std = 0.1f;
  return c;
}

models::TensorMap image_batch(int64_t b) {
  std::vector<int32_t> labels(b);
  for (int64_t i = 0; i < b; ++i) labels[i] = static_cast<int32_t>((i * 7) % 10);
  return {{"inputs", testing::randn({b, 8, 8}, 11)}, {"labels", Tensor::from_vector_i32({b}, labels)}};
}

train::SliceLoss classifier_loss(const models::Perceiver& m) {
  return [&m](const models::TensorMap& part, Rng* rng, train::EvalResult* stats) {
    Tensor logits = m.forward(part.at("inputs"), rng);
    if (stats) train::accumulate_predictions(logits, part.at("labels"), *stats);
    return ag::cross_entropy(logits, part.at("labels"), 0.1f);  // mean over the slice
  };
}

// Float rounding of sums taken in another order stays near 1e-7 relative; a slice weighted by
// 1/slices instead of its share (4 vs 3 examples) is off by ~10%, and a gradient lost from a
// checkpointed layer by 100%.
constexpr double kSliceTolerance = 2e-5;

TEST(DataParallel, SlicesGiveTheWholeBatchGradient) {
  models::Perceiver m(small_config(), 3);
  m.train(true);
  const models::TensorMap batch = image_batch(7);  // slices of 3+4, 2+2+3: unequal on purpose
  const auto [ref_loss, ref] = step(m, batch, 1, classifier_loss(m));
  for (int slices : {2, 3, 7}) {
    const auto [loss, got] = step(m, batch, slices, classifier_loss(m));
    const auto [rel, name] = worst_relative(got, ref);
    EXPECT_LT(rel, kSliceTolerance) << slices << " slices: worst parameter " << name;
    EXPECT_NEAR(loss.loss, ref_loss.loss, 1e-6 * std::fabs(ref_loss.loss)) << slices << " slices";
    EXPECT_EQ(loss.stats.count, 7);
    EXPECT_EQ(loss.stats.correct, ref_loss.stats.correct);
    EXPECT_NEAR(loss.stats.loss, ref_loss.stats.loss, 1e-6 * ref_loss.stats.loss);
  }
}

TEST(DataParallel, CheckpointedLayersAddIntoTheSliceGradients) {
  models::Perceiver plain(small_config(), 3), checkpointed(small_config(), 3);
  plain.train(true);
  checkpointed.train(true);
  checkpointed.set_activation_checkpointing(true);  // nested backward inside the slice's walk
  const models::TensorMap batch = image_batch(6);
  const auto [ref_loss, ref] = step(plain, batch, 1, classifier_loss(plain));
  const auto [loss, got] = step(checkpointed, batch, 2, classifier_loss(checkpointed));
  const auto [rel, name] = worst_relative(got, ref);
  EXPECT_LT(rel, kSliceTolerance) << "worst parameter " << name;
}

TEST(DataParallel, IdenticalFromRunToRun) {
  set_num_threads(2);
  models::Perceiver m(small_config(), 4);
  m.train(true);
  const models::TensorMap batch = image_batch(9);
  const auto [l1, a] = step(m, batch, 2, classifier_loss(m));
  for (int run = 0; run < 3; ++run) {
    const auto [l2, b] = step(m, batch, 2, classifier_loss(m));
    EXPECT_EQ(l1.loss, l2.loss);
    for (const auto& [name, g] : a) EXPECT_EQ(g, b.at(name)) << name << " differs in run " << run;
  }
  set_num_threads(0);
}

TEST(DataParallel, DropoutDrawsEachSliceFromItsOwnStream) {
  models::PerceiverConfig c = small_config();
  c.dropout = 0.3f;
  models::Perceiver m(c, 5);
  m.train(true);
  const models::TensorMap batch = image_batch(8);
  const auto [l1, a] = step(m, batch, 2, classifier_loss(m));
  const auto [l2, b] = step(m, batch, 2, classifier_loss(m));
  EXPECT_EQ(l1.loss, l2.loss);  // the streams are a function of the step's rng
  // two identical halves: equal slice losses would mean both slices drew the same masks
  Tensor x = batch.at("inputs").clone();
  std::copy(x.f32(), x.f32() + 4 * 64, x.f32() + 4 * 64);
  const models::TensorMap twin = {{"inputs", x}, {"labels", Tensor::from_vector_i32({8}, {1, 2, 3, 4, 1, 2, 3, 4})}};
  float slice_loss[2] = {0, 0};
  const train::SliceLoss recording = [&](const models::TensorMap& part, Rng* rng, train::EvalResult*) {
    Tensor l = ag::cross_entropy(m.forward(part.at("inputs"), rng), part.at("labels"), 0.0f);
    slice_loss[part.at("inputs").f32() == x.f32() ? 0 : 1] = l.item();  // slice 0 starts at x's data
    return l;
  };
  step(m, twin, 2, recording);
  EXPECT_NE(slice_loss[0], 0.0f);
  EXPECT_NE(slice_loss[0], slice_loss[1]) << "both slices drew the same dropout masks";
  // without dropout the halves agree, so the difference above is the masks'
  m.train(false);
  step(m, twin, 2, recording);
  EXPECT_FLOAT_EQ(slice_loss[0], slice_loss[1]);
}

// A masked LM averages over masked bytes, not examples: slices with 5 and 1 masked bytes (and one
// with none) must weigh 5:1:0.
TEST(DataParallel, MaskedLMSlicesWeighByMaskedBytes) {
  const nlohmann::json cfg = {{"architectures", {"PerceiverForMaskedLM"}}, {"d_model", 16}, {"d_latents", 24},
                              {"num_latents", 8}, {"num_self_attends_per_block", 1},
                              {"num_self_attention_heads", 2}, {"num_cross_attention_heads", 1},
                              {"qk_channels", 16}, {"v_channels", 24}, {"max_position_embeddings", 12}};
  std::unique_ptr<models::Model> m = models::create_model(cfg, "test config", 2);
  m->train(true);
  const int64_t b = 3, len = 12;
  std::vector<int32_t> ids(b * len), mask(b * len, 1), labels(b * len, -100);
  for (int64_t i = 0; i < b * len; ++i) ids[i] = static_cast<int32_t>(10 + (i * 37) % 200);
  for (int64_t j = 0; j < 5; ++j) labels[j * 2] = ids[j * 2];   // example 0: 5 masked bytes
  labels[len + 3] = ids[len + 3];                                // example 1: 1; example 2: none
  const models::TensorMap batch = {{"inputs", Tensor::from_vector_i32({b, len}, ids)},
                                   {"attention_mask", Tensor::from_vector_i32({b, len}, mask)},
                                   {"labels", Tensor::from_vector_i32({b, len}, labels)}};
  const train::SliceLoss loss = [&](const models::TensorMap& part, Rng* rng, train::EvalResult*) {
    const models::TensorMap out = m->forward({{"inputs", part.at("inputs")}, {"attention_mask", part.at("attention_mask")}},
                                             nullptr, rng);
    return m->loss(out, part);
  };
  const auto [ref_loss, ref] = step(*m, batch, 1, loss);
  const auto [got_loss, got] = step(*m, batch, 3, loss);
  const auto [rel, name] = worst_relative(got, ref);
  EXPECT_LT(rel, kSliceTolerance) << "worst parameter " << name;
  EXPECT_NEAR(got_loss.loss, ref_loss.loss, 1e-6 * std::fabs(ref_loss.loss));
}

TEST(DataParallel, SliceCountRule) {
  models::Perceiver m(small_config(), 1);
  EXPECT_EQ(train::batch_slices("auto", 2, 64, m), 2);
  EXPECT_EQ(train::batch_slices("auto", 1, 64, m), 1);
  EXPECT_EQ(train::batch_slices("intra_op", 2, 64, m), 1);
  EXPECT_EQ(train::batch_slices("auto", 2, 3, m), 1);   // fewer than two examples per slice
  EXPECT_EQ(train::batch_slices("batch", 2, 3, m), 2);
  EXPECT_EQ(train::batch_slices("batch", 4, 3, m), 3);  // never an empty slice
  EXPECT_THROW(train::batch_slices("threads", 2, 64, m), Error);
  // a large model (16.8M parameters: 67 MB of extra gradients) keeps intra-op threading
  models::PerceiverConfig big = small_config();
  big.d_latents = 512;
  big.self_attends_per_block = 8;
  models::Perceiver large(big, 1);
  ASSERT_GT(large.num_parameters() * 4, 64 * 1048576);
  EXPECT_EQ(train::batch_slices("auto", 2, 64, large), 1);
  EXPECT_EQ(train::batch_slices("batch", 2, 64, large), 2);
  // batch norm (the conv stem of vision-perceiver-conv) normalises over the batch: never split
  const nlohmann::json conv = {{"architectures", {"PerceiverForImageClassificationConvProcessing"}},
                               {"d_model", 322}, {"d_latents", 16}, {"num_latents", 4},
                               {"num_self_attends_per_block", 1}, {"num_self_attention_heads", 1},
                               {"num_cross_attention_heads", 1}, {"image_size", 16}, {"num_labels", 3}};
  std::unique_ptr<models::Model> bn = models::create_model(conv, "conv config", 1);
  EXPECT_EQ(train::batch_slices("auto", 2, 64, *bn), 1);
  try {
    train::batch_slices("batch", 2, 64, *bn);
    ADD_FAILURE() << "batch slices accepted for a batch-norm model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("batch norm"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace perceiver
