// Parity with Hugging Face ViTForImageClassification (shrunk random-weight fixture in
// tests/data/hf/vit, README section 6): the model is built from the fixture's config.json and
// model.safetensors; every stored forward tensor, the loss, every parameter gradient and the
// losses after 1, 2 and 3 plain SGD steps (lr 0.01, fresh gradients each step) are checked with
// the README section 4 criteria.
#include <cstdio>

#include "parity/hf_parity_util.h"
#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/models/vit/vit.h"
#include "perceiver/ops/elementwise.h"

namespace perceiver {
namespace {

using models::ViT;
using testing::forward_ratio;
using testing::grad_ratio;

bool is_grad_entry(const std::string& name) { return name.rfind("loss", 0) != 0; }

double loss_ratio(float got, float ref) { return std::fabs(got - ref) / (1e-4 * std::max(1.0f, std::fabs(ref))); }

// Zeroes the gradients, runs the train-mode forward, cross-entropy and backward; returns the loss.
float loss_and_grads(ViT& model, const Tensor& pixels, const Tensor& labels) {
  model.visit_parameters([](const std::string&, Tensor& p) { p.zero_grad(); });
  Tensor loss = ag::cross_entropy(model.forward_pixels(pixels), labels, 0.0f);
  autograd::backward(loss);
  return loss.item();
}

std::unique_ptr<ViT> load_fixture_model(const testing::HfFixture& fx) {
  return testing::model_from_state<models::ViT>(fx.meta, io::load_safetensors(fx.dir + "/model.safetensors").tensors,
                                  fx.dir + "/model.safetensors");
}

TEST(ViTParity, ConfigMatchesFixture) {
  const testing::HfFixture fx = testing::load_hf_fixture("vit");
  const models::ViTConfig c = models::parse_hf_vit_config(fx.meta, "vit/config.json");
  EXPECT_EQ(c.image_size, (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(c.patch_size, (std::vector<int64_t>{8, 8}));
  EXPECT_EQ(c.in_channels, 3);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.intermediate_size, 256);
  EXPECT_FLOAT_EQ(c.layer_norm_eps, 1e-12f);
  EXPECT_EQ(c.num_classes, 10);  // len(id2label), no num_labels key
  EXPECT_EQ(c.id2label.at(9), "LABEL_9");
  const std::vector<int64_t> grid = fx.meta.at("patch_grid_rows_cols").get<std::vector<int64_t>>();
  EXPECT_EQ(c.grid_h(), grid[0]);
  EXPECT_EQ(c.grid_w(), grid[1]);
  // The hub-style config alone (what a model folder holds) parses the same.
  const models::ViTConfig hub = models::parse_hf_vit_config(fx.meta.at("config"), "config.json");
  EXPECT_EQ(hub.to_json(), c.to_json());
  EXPECT_TRUE(models::is_hf_vit_config(fx.meta.at("config")));

  std::unique_ptr<ViT> model = load_fixture_model(fx);
  EXPECT_EQ(model->num_parameters(), fx.meta.at("num_parameters").get<int64_t>());
  size_t listed = 0;
  for (const auto& entry : fx.meta.at("state_dict")) {
    (void)entry;
    ++listed;
  }
  EXPECT_EQ(model->named_parameters().size(), listed);
}

TEST(ViTParity, ForwardGradientsAndSgdMatchHuggingFace) {
  const testing::HfFixture fx = testing::load_hf_fixture("vit");
  std::unique_ptr<ViT> model = load_fixture_model(fx);
  const Tensor& pixels = fx.inputs.at("pixel_values");
  const Tensor& labels = fx.inputs.at("labels");

  // 1. Eval-mode forward: every stored tensor.
  models::ViTTrace trace;
  {
    autograd::NoGradGuard no_grad;
    model->forward_pixels(pixels, &trace);
  }
  const std::map<std::string, Tensor> got = trace.to_map();
  double worst_forward = 0;
  std::string worst_forward_name;
  for (const auto& [name, ref] : fx.outputs) {
    auto it = got.find(name);
    ASSERT_TRUE(it != got.end()) << "no output '" << name << "'";
    ASSERT_TRUE(testing::same_shape(it->second, ref, name));
    const double r = forward_ratio(it->second, ref);
    EXPECT_LE(r, 1.0) << name << ": max|diff| " << testing::max_abs_diff(it->second, ref);
    if (r > worst_forward) worst_forward = r, worst_forward_name = name;
  }
  EXPECT_EQ(got.size(), fx.outputs.size());

  // 2. Train mode (every dropout is 0): the loss and the gradient of every parameter.
  model->train(true);
  const float loss0 = loss_and_grads(*model, pixels, labels);
  double worst_loss = loss_ratio(loss0, fx.grads.at("loss").item());
  EXPECT_LE(worst_loss, 1.0) << "loss " << loss0 << " vs " << fx.grads.at("loss").item();

  double g_max = 0;
  size_t grad_entries = 0;
  for (const auto& [name, ref] : fx.grads)
    if (is_grad_entry(name)) g_max = std::max(g_max, testing::max_abs(ref)), ++grad_entries;
  EXPECT_NEAR(g_max, 1.22, 0.01);  // README section 4
  double worst_grad = 0, worst_other_grad = 0;  // other: besides the analytically zero key biases
  std::string worst_grad_name;
  size_t params_seen = 0;
  for (auto& [name, p] : model->named_parameters()) {
    ++params_seen;
    auto it = fx.grads.find(name);
    ASSERT_TRUE(it != fx.grads.end()) << "no reference gradient for parameter " << name;
    Tensor g = p.grad().defined() ? p.grad() : Tensor::zeros(p.shape());
    ASSERT_TRUE(testing::same_shape(g, it->second, "grad " + name));
    const double r = grad_ratio(g, it->second, g_max);
    EXPECT_LE(r, 1.0) << "gradient of " << name;
    if (r > worst_grad) worst_grad = r, worst_grad_name = name;
    if (name.find("key.bias") == std::string::npos) worst_other_grad = std::max(worst_other_grad, r);
  }
  EXPECT_EQ(params_seen, grad_entries) << "parameter count differs from the reference gradients";

  // 3. Three plain SGD steps, p <- p + (-0.01) g, fresh gradients each step.
  const char* keys[] = {"loss_after_1_sgd_step", "loss_after_2_sgd_steps", "loss_after_3_sgd_steps"};
  for (const char* key : keys) {
    {
      autograd::NoGradGuard no_grad;
      model->visit_parameters([](const std::string&, Tensor& p) {
        if (p.grad().defined()) ops::axpy_inplace(p, -0.01f, p.grad());
      });
    }
    const float loss = loss_and_grads(*model, pixels, labels);
    const float ref = fx.grads.at(key).item();
    const double r = loss_ratio(loss, ref);
    EXPECT_LE(r, 1.0) << key << ": " << loss << " vs " << ref;
    worst_loss = std::max(worst_loss, r);
  }
  std::printf("[ vit ] worst ratios (1.0 = tolerance): forward %.3g (%s), loss %.3g, gradient %.3g (%s), "
              "gradient other than key biases %.3g\n",
              worst_forward, worst_forward_name.c_str(), worst_loss, worst_grad, worst_grad_name.c_str(),
              worst_other_grad);
  EXPECT_LE(worst_forward, testing::kForwardHeadroom) << "forward error far above this port's usual";
  EXPECT_LE(worst_loss, testing::kLossHeadroom) << "loss error far above this port's usual";
  EXPECT_LE(worst_other_grad, testing::kGradHeadroom) << "gradient error far above this port's usual";
  EXPECT_LE(worst_grad, testing::kKeyBiasGradHeadroom) << "key-bias gradient noise far above this port's usual";
}

TEST(ViTParity, StrictLoadingListsBadTensors) {
  const testing::HfFixture fx = testing::load_hf_fixture("vit");
  std::map<std::string, Tensor> state = io::load_safetensors(fx.dir + "/model.safetensors").tensors;
  state.erase("classifier.bias");
  state["vit.pooler.dense.weight"] = Tensor::zeros({64, 64});
  state["vit.layernorm.weight"] = Tensor::zeros({65});
  try {
    testing::model_from_state<models::ViT>(fx.meta, state, "model.safetensors");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("classifier.bias"), std::string::npos) << msg;
    EXPECT_NE(msg.find("vit.pooler.dense.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("vit.layernorm.weight"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace perceiver
