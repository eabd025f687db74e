// Parity with Hugging Face transformers for the six DeepMind Perceiver IO checkpoint families and
// the text classifier
// (shrunk random-weight fixtures in tests/data/hf): every stored forward tensor, the training
// loss and every parameter gradient, the losses after 1, 2 and 3 plain SGD steps (lr 0.01), and
// for the conv model the train-mode BatchNorm logits and running buffers (README sections 2-4).
#include <cstdio>

#include "parity/hf_parity_util.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/ops/elementwise.h"

namespace perceiver {
namespace {

using models::perceiver_io::PerceiverIO;
using models::perceiver_io::TensorMap;
using testing::forward_ratio;
using testing::grad_ratio;

bool is_grad_entry(const std::string& name) {
  return name.rfind("loss", 0) != 0 && name != "train_mode_logits" &&
         name.rfind("buffers_after_first_train_forward.", 0) != 0;
}

// Zeroes the gradients, runs a train-mode forward, the task loss and backward; returns the loss.
float loss_and_grads(PerceiverIO& model, const TensorMap& inputs, TensorMap* logits_out = nullptr) {
  model.visit_parameters([](const std::string&, Tensor& p) { p.zero_grad(); });
  TensorMap logits = model.forward(inputs);
  Tensor loss = model.loss(logits, inputs);
  autograd::backward(loss);
  if (logits_out) *logits_out = logits;
  return loss.item();
}

void check_family(const std::string& family) {
  testing::HfFixture fx = testing::load_hf_fixture(family);
  testing::TempDir tmp;
  std::unique_ptr<PerceiverIO> model =
      testing::load_perceiver_io_folder(testing::make_hub_folder(fx, tmp.path + "/" + family));
  ASSERT_EQ(model->config().architecture, fx.meta.at("model_class").get<std::string>());

  // 1. Eval-mode forward: every stored tensor.
  TensorMap trace;
  {
    autograd::NoGradGuard no_grad;
    model->forward(fx.inputs, &trace);
  }
  double worst_forward = 0;
  std::string worst_forward_name;
  for (const auto& [name, ref] : fx.outputs) {
    auto it = trace.find(name);
    ASSERT_TRUE(it != trace.end()) << family << ": no output '" << name << "'";
    ASSERT_TRUE(testing::same_shape(it->second, ref, family + " " + name));
    const double r = forward_ratio(it->second, ref);
    EXPECT_LE(r, 1.0) << family << " " << name << ": max|diff| " << testing::max_abs_diff(it->second, ref);
    if (r > worst_forward) worst_forward = r, worst_forward_name = name;
  }

  // 2. Train mode (dropout is 0 here; the conv model's BatchNorm uses batch statistics): the loss
  //    and the gradient of every parameter.
  model->train(true);
  TensorMap logits;
  const float loss0 = loss_and_grads(*model, fx.inputs, &logits);
  double worst_loss = std::fabs(loss0 - fx.grads.at("loss").item()) / (1e-4 * std::max(1.0f, std::fabs(fx.grads.at("loss").item())));
  EXPECT_LE(worst_loss, 1.0) << family << " loss " << loss0 << " vs " << fx.grads.at("loss").item();
  if (fx.grads.count("train_mode_logits")) {
    const Tensor& ref = fx.grads.at("train_mode_logits");
    ASSERT_TRUE(testing::same_shape(logits.at("logits"), ref, family + " train_mode_logits"));
    EXPECT_LE(forward_ratio(logits.at("logits"), ref), 1.0) << family << " train_mode_logits";
    worst_forward = std::max(worst_forward, forward_ratio(logits.at("logits"), ref));
  }
  int buffers_checked = 0;
  model->visit_buffers([&](const std::string& name, Tensor& buf) {
    const std::string key = "buffers_after_first_train_forward." + name;
    ASSERT_TRUE(fx.grads.count(key)) << key;
    const Tensor& ref = fx.grads.at(key);
    ASSERT_TRUE(testing::same_shape(buf, ref, key));
    if (buf.dtype() == DType::kI32) {
      EXPECT_EQ(buf.data<int32_t>()[0], ref.data<int32_t>()[0]) << key;
    } else {
      EXPECT_LE(forward_ratio(buf, ref), 1.0) << key;
    }
    ++buffers_checked;
  });
  for (const auto& [name, t] : fx.grads)
    if (name.rfind("buffers_after_first_train_forward.", 0) == 0) EXPECT_GT(buffers_checked, 0) << name;

  double g_max = 0;
  for (const auto& [name, ref] : fx.grads)
    if (is_grad_entry(name)) g_max = std::max(g_max, testing::max_abs(ref));
  double worst_grad = 0, worst_other_grad = 0;  // other: besides the analytically zero key biases
  std::string worst_grad_name;
  size_t params_seen = 0;
  for (auto& [name, p] : model->named_parameters()) {
    ++params_seen;
    auto it = fx.grads.find(name);
    ASSERT_TRUE(it != fx.grads.end()) << family << ": no reference gradient for parameter " << name;
    Tensor g = p.grad().defined() ? p.grad() : Tensor::zeros(p.shape());
    ASSERT_TRUE(testing::same_shape(g, it->second, family + " grad " + name));
    const double r = grad_ratio(g, it->second, g_max);
    EXPECT_LE(r, 1.0) << family << " gradient of " << name;
    if (r > worst_grad) worst_grad = r, worst_grad_name = name;
    if (name.find("key.bias") == std::string::npos) worst_other_grad = std::max(worst_other_grad, r);
  }
  size_t grad_entries = 0;
  for (const auto& [name, t] : fx.grads) grad_entries += is_grad_entry(name);
  EXPECT_EQ(params_seen, grad_entries) << family << ": parameter count differs from the reference gradients";

  // 3. Three plain SGD steps, p <- p - 0.01 g, fresh gradients each step.
  const char* keys[] = {"loss_after_1_sgd_step", "loss_after_2_sgd_steps", "loss_after_3_sgd_steps"};
  float loss = loss0;
  for (const char* key : keys) {
    {
      autograd::NoGradGuard no_grad;
      model->visit_parameters([](const std::string&, Tensor& p) {
        if (p.grad().defined()) ops::axpy_inplace(p, -0.01f, p.grad());
      });
    }
    loss = loss_and_grads(*model, fx.inputs);
    const float ref = fx.grads.at(key).item();
    const double r = std::fabs(loss - ref) / (1e-4 * std::max(1.0f, std::fabs(ref)));
    EXPECT_LE(r, 1.0) << family << " " << key << ": " << loss << " vs " << ref;
    worst_loss = std::max(worst_loss, r);
  }
  if (family == "optical-flow-perceiver") {
    // The flow losses move less than the loss tolerance: check the decrease itself.
    const double d_ref = fx.grads.at("loss").item() - fx.grads.at("loss_after_3_sgd_steps").item();
    const double d_port = double(loss0) - double(loss);
    EXPECT_LE(std::fabs(d_port - d_ref), 2e-2 * std::fabs(d_ref)) << "decrease " << d_port << " vs " << d_ref;
  }
  std::printf("[ %s ] worst ratios (1.0 = tolerance): forward %.3g (%s), loss %.3g, gradient %.3g (%s), "
              "gradient other than key biases %.3g\n",
              family.c_str(), worst_forward, worst_forward_name.c_str(), worst_loss, worst_grad,
              worst_grad_name.c_str(), worst_other_grad);
  EXPECT_LE(worst_forward, testing::kForwardHeadroom) << family << ": forward error far above this port's usual";
  EXPECT_LE(worst_loss, testing::kLossHeadroom) << family << ": loss error far above this port's usual";
  EXPECT_LE(worst_other_grad, testing::kGradHeadroom) << family << ": gradient error far above this port's usual";
  EXPECT_LE(worst_grad, testing::kKeyBiasGradHeadroom) << family << ": key-bias gradient noise far above this port's usual";
}

TEST(HfPerceiverParity, LanguagePerceiver) { check_family("language-perceiver"); }
TEST(HfPerceiverParity, VisionPerceiverFourier) { check_family("vision-perceiver-fourier"); }
TEST(HfPerceiverParity, VisionPerceiverLearned) { check_family("vision-perceiver-learned"); }
TEST(HfPerceiverParity, OpticalFlowPerceiver) { check_family("optical-flow-perceiver"); }
TEST(HfPerceiverParity, VisionPerceiverConv) { check_family("vision-perceiver-conv"); }
TEST(HfPerceiverParity, MultimodalPerceiver) { check_family("multimodal-perceiver"); }
// PerceiverForSequenceClassification has no DeepMind checkpoint: a random model written by
// tools/make_hf_seqcls_fixture.py (transformers 5.25), same checks.
TEST(HfPerceiverParity, SequenceClassification) { check_family("sequence-classification"); }

}  // namespace
}  // namespace perceiver
