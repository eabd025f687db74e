// Parity with timm's BoTNet (botnet26t layout, shrunk, random weights and BatchNorm statistics;
// tests/data/botnet, written by tools/make_botnet_fixtures.py): the model is built from the
// fixture's config.json through the registry and loads model.safetensors strictly; eval-mode
// outputs of the stem, every stage, the pooled features and the logits; the train-mode loss
// (batch statistics), every parameter gradient and the updated BatchNorm running statistics.
// Criteria as for the Hugging Face fixtures (tests/parity/hf_parity_util.h): forward within
// 1e-4 max(1, max|ref|), gradients within 2e-4 max(max|ref|, 1e-3 G).
#include <cstdio>

#include "parity/hf_parity_util.h"
#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/models/botnet/botnet.h"
#include "perceiver/models/registry.h"

namespace perceiver {
namespace {

using testing::forward_ratio;
using testing::grad_ratio;

const std::string kDir = std::string(PERCEIVER_SOURCE_DIR) + "/tests/data/botnet";

struct BotNetFixture {
  std::map<std::string, Tensor> inputs, outputs, grads;
  std::unique_ptr<models::Model> model;
  Tensor labels;  // int32
};

BotNetFixture load() {
  BotNetFixture fx;
  fx.inputs = io::load_safetensors(kDir + "/inputs.safetensors").tensors;
  fx.outputs = io::load_safetensors(kDir + "/outputs.safetensors").tensors;
  fx.grads = io::load_safetensors(kDir + "/grads.safetensors").tensors;
  fx.model = io::load_model_folder(kDir, {"botnet26t_256"}, "test");
  fx.labels = fx.inputs.at("labels");  // int64 in the file, int32 once loaded
  EXPECT_EQ(fx.labels.dtype(), DType::kI32);
  return fx;
}

TEST(BotNetParity, LoadsTheTimmStateDictStrictly) {
  BotNetFixture fx = load();
  const auto* botnet = dynamic_cast<const models::BotNet*>(fx.model.get());
  ASSERT_NE(botnet, nullptr);
  EXPECT_EQ(botnet->config().channels, (std::vector<int64_t>{16, 32, 64, 128}));
  const nlohmann::json meta = io::read_folder_config(kDir);
  EXPECT_EQ(fx.model->num_parameters(), meta.at("fixture").at("num_parameters").get<int64_t>());
  // one tensor missing, one unexpected, one of another shape: all named in one error
  std::map<std::string, Tensor> state = io::load_safetensors(kDir + "/model.safetensors").tensors;
  state.erase("stages.3.1.self_attn.pos_embed.width_rel");
  state["stages.9.0.conv1_1x1.conv.weight"] = Tensor::zeros({1});
  state["head.fc.weight"] = Tensor::zeros({3, 128});
  try {
    fx.model->load_state_dict(state, "broken");
    ADD_FAILURE() << "a broken state dict loaded";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("stages.3.1.self_attn.pos_embed.width_rel"), std::string::npos) << msg;
    EXPECT_NE(msg.find("stages.9.0.conv1_1x1.conv.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("head.fc.weight"), std::string::npos) << msg;
  }
}

TEST(BotNetParity, ForwardGradientsAndRunningStatisticsMatchTimm) {
  BotNetFixture fx = load();
  models::Model& model = *fx.model;
  const Tensor& pixels = fx.inputs.at("pixel_values");

  // 1. Eval mode: running statistics.
  models::TensorMap trace;
  {
    autograd::NoGradGuard no_grad;
    model.train(false);
    model.forward({{"pixel_values", pixels}}, &trace);
  }
  double worst_forward = 0;
  std::string worst_forward_name;
  for (const auto& [name, ref] : fx.outputs) {
    auto it = trace.find(name);
    ASSERT_TRUE(it != trace.end()) << "no output '" << name << "'";
    ASSERT_TRUE(testing::same_shape(it->second, ref, name));
    const double r = forward_ratio(it->second, ref);
    EXPECT_LE(r, 1.0) << name << ": max|diff| " << testing::max_abs_diff(it->second, ref);
    if (r > worst_forward) worst_forward = r, worst_forward_name = name;
  }

  // 2. Train mode: batch statistics; loss, gradients, running statistics after the forward.
  model.train(true);
  model.visit_parameters([](const std::string&, Tensor& p) { p.zero_grad(); });
  const models::TensorMap in{{"pixel_values", pixels}, {"labels", fx.labels}};
  Tensor loss = model.loss(model.forward(in), in);
  autograd::backward(loss);
  const double loss_r = std::fabs(loss.item() - fx.grads.at("loss").item()) /
                        (1e-4 * std::max(1.0f, std::fabs(fx.grads.at("loss").item())));
  EXPECT_LE(loss_r, 1.0) << "loss " << loss.item() << " vs " << fx.grads.at("loss").item();
  double g_max = 0;
  for (const auto& [name, ref] : fx.grads)
    if (name != "loss" && name.rfind("after.", 0) != 0) g_max = std::max(g_max, testing::max_abs(ref));
  double worst_grad = 0;
  std::string worst_grad_name;
  size_t seen = 0;
  for (auto& [name, p] : model.named_parameters()) {
    ++seen;
    auto it = fx.grads.find(name);
    ASSERT_TRUE(it != fx.grads.end()) << "no reference gradient for " << name;
    ASSERT_TRUE(p.grad().defined()) << "no gradient for " << name;
    ASSERT_TRUE(testing::same_shape(p.grad(), it->second, "grad " + name));
    const double r = grad_ratio(p.grad(), it->second, g_max);
    EXPECT_LE(r, 1.0) << "gradient of " << name;
    if (r > worst_grad) worst_grad = r, worst_grad_name = name;
  }
  EXPECT_GT(seen, 60u);
  double worst_stat = 0;
  for (const auto& [name, t] : model.state_dict()) {
    if (name.find("running_") == std::string::npos) continue;
    const Tensor& ref = fx.grads.at("after." + name);
    const double r = forward_ratio(t, ref);
    EXPECT_LE(r, 1.0) << name << " after the training forward";
    worst_stat = std::max(worst_stat, r);
  }
  std::printf("[ botnet ] worst ratios (1.0 = tolerance): forward %.3g (%s), loss %.3g, gradient %.3g (%s), "
              "running statistics %.3g\n",
              worst_forward, worst_forward_name.c_str(), loss_r, worst_grad, worst_grad_name.c_str(), worst_stat);
}

TEST(BotNetParity, ConfigErrorsNameTheField) {
  nlohmann::json c = io::read_folder_config(kDir);
  c["pretrained_cfg"]["input_size"] = {3, 48, 96};  // stage 3's strided attention would see 3 x 6
  EXPECT_THROW(models::create_model(c, "odd", 0), Error);
  c = io::read_folder_config(kDir);
  c["byob"]["num_heads"] = 3;
  EXPECT_THROW(models::create_model(c, "heads", 0), Error);
  c = io::read_folder_config(kDir);
  c["architecture"] = "botnet50ts_256";
  EXPECT_THROW(models::create_model(c, "arch", 0), Error);
  // the wrong input size is an error naming the expected one
  std::unique_ptr<models::Model> m = models::create_model(io::read_folder_config(kDir), "ok", 0);
  try {
    autograd::NoGradGuard no_grad;
    m->forward({{"pixel_values", Tensor::zeros({1, 3, 64, 64})}});
    ADD_FAILURE() << "a 64 x 64 input ran on a 64 x 96 model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("64, 96"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace perceiver
