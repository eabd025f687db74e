// The trainer's memory estimate against the allocator's measured peak: a training step's
// activations (models' training_activation_bytes) plus parameter gradients stay within
// [0.67, 1.5] x what one forward + backward really holds, with and without activation
// checkpointing; an allocation budget refuses oversized requests before allocating.
#include <gtest/gtest.h>

#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/core/allocator.h"
#include "perceiver/core/error.h"
#include "perceiver/models/image_classifier.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

double measured_over_estimate(const nlohmann::json& model_cfg, int64_t batch, bool checkpointing) {
  auto model = models::make_image_classifier(models::normalize_image_classifier_config(model_cfg), 3);
  model->set_activation_checkpointing(checkpointing);
  model->train(true);
  Shape xs = model->image_size();
  xs.insert(xs.begin(), batch);
  if (model->in_channels() > 1) xs.push_back(model->in_channels());
  Tensor x = testing::randn(xs, 5);
  Tensor y = Tensor::zeros({batch}, DType::kI32);
  Rng rng(1);
  // Warm up once (caches, scratch), then measure a step from a clean baseline.
  for (int pass = 0; pass < 2; ++pass) {
    model->visit_parameters([](const std::string&, Tensor& p) { p.zero_grad(); });
    const size_t base = memory_stats().bytes_in_use;
    reset_peak_memory();
    autograd::backward(ag::cross_entropy(model->forward(x, &rng), y, 0.0f));
    const double peak = static_cast<double>(memory_stats().peak_in_use - base);
    const double estimate = static_cast<double>(batch * model->training_activation_bytes(checkpointing) +
                                                model->num_parameters() * int64_t(sizeof(float)));
    if (pass == 1) return peak / estimate;
  }
  return 0;
}

TEST(MemoryEstimate, TrainingActivationsWithinAHalfOfTheMeasuredPeak) {
  const nlohmann::json configs[] = {
      {{"num_latents", 16}, {"d_latents", 64}, {"num_fourier_bands", 8}, {"self_attention_heads", 4},
       {"self_attends_per_block", 3}},
      {{"num_latents", 32}, {"d_latents", 128}, {"num_fourier_bands", 4}, {"self_attention_heads", 4},
       {"self_attends_per_block", 2}, {"num_cross_attends", 2}, {"dropout", 0.1}, {"head", "query"}},
      {{"image_size", {56, 56}}, {"num_latents", 8}, {"d_latents", 32}, {"num_fourier_bands", 16},
       {"self_attention_heads", 2}, {"self_attends_per_block", 1}, {"cross_attention_widening_factor", 2}},
      {{"num_latents", 16}, {"d_latents", 64}, {"num_fourier_bands", 8}, {"self_attention_heads", 4},
       {"self_attends_per_block", 2}, {"input_patch_size", 3}},
      {{"image_size", {64}}, {"in_channels", 32}, {"input_projection", 24}, {"input_projection_type", "log_power"},
       {"num_latents", 8}, {"d_latents", 32}, {"num_fourier_bands", 8}, {"self_attention_heads", 2},
       {"self_attends_per_block", 2}},
      {{"type", "vit"}, {"image_size", 28}, {"patch_size", 4}, {"hidden_size", 64}, {"num_attention_heads", 4},
       {"num_hidden_layers", 3}, {"intermediate_size", 128}},
      {{"type", "vit"}, {"image_size", 32}, {"patch_size", 2}, {"hidden_size", 32}, {"num_attention_heads", 2},
       {"num_hidden_layers", 2}, {"intermediate_size", 64}, {"dropout", 0.1}},
      {{"type", "perceiver_io"},
       {"hub_config", {{"architectures", {"PerceiverForImageClassificationLearned"}}, {"image_size", 28},
                       {"num_latents", 16}, {"d_latents", 64}, {"num_self_attends_per_block", 2},
                       {"num_self_attention_heads", 4}, {"num_cross_attention_heads", 1}, {"num_labels", 10}}}},
      {{"type", "botnet"}, {"image_size", 28}, {"in_channels", 1}, {"num_classes", 10}, {"stem_chs", 16},
       {"channels", {16, 32, 64, 128}}, {"depths", {2, 2, 2, 2}}},
      {{"type", "botnet"}, {"image_size", {64, 32}}, {"in_channels", 3}, {"num_classes", 5}, {"stem_chs", 16},
       {"channels", {32, 32, 64, 64}}, {"depths", {1, 1, 3, 2}}, {"num_heads", 2}},
  };
  for (const auto& cfg : configs)
    for (bool ckpt : {false, true}) {
      const double ratio = measured_over_estimate(cfg, 8, ckpt);
      EXPECT_GT(ratio, 0.67) << cfg.dump() << " checkpointing " << ckpt;
      EXPECT_LT(ratio, 1.5) << cfg.dump() << " checkpointing " << ckpt;
      std::printf("measured / estimated %.2f  checkpointing %d  %s\n", ratio, ckpt, cfg.dump().c_str());
    }
}

TEST(MemoryEstimate, BudgetRefusesBeforeAllocating) {
  {
    AllocationBudget budget(1 << 20, "building a test model");
    EXPECT_NO_THROW(Tensor::empty({1000}));
    try {
      Tensor::empty({int64_t(1) << 40});  // 4 TiB: must fail on the budget, not in malloc
      FAIL();
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("[memory] building a test model needs more than 1.0 MiB"), std::string::npos) << m;
      EXPECT_NE(m.find("4.0 TiB requested"), std::string::npos) << m;
    }
    set_memory_checks(false);
    EXPECT_NO_THROW(Tensor::empty({1 << 19}));  // 2 MiB: allowed with the checks off
    set_memory_checks(true);
  }
  EXPECT_NO_THROW(Tensor::empty({1 << 19}));  // no budget active any more
  EXPECT_GT(machine_memory_bytes(), size_t(1) << 28);
}

}  // namespace
}  // namespace perceiver
