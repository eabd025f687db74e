// `perceiver grad --model DIR --inputs IN.safetensors --outputs OUT.safetensors`: the task's
// training loss (train mode) on the labels / targets in the inputs ("labels", "target",
// "target.<m>"), written as "loss" plus the gradient of every parameter under its HF name (the
// layout of the fixtures' grads.safetensors; unused parameters get zeros). A Hugging Face ViT
// folder takes "pixel_values" and "labels" (class ids) and gives the cross-entropy loss (mean over
// the batch) in train mode; dropout, where the config has any, draws from a fixed seed.
#include <cstdio>

#include "commands.h"
#include "finite_check.h"
#include "hf_task_util.h"
#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/core/random.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/io/model_folder.h"

namespace perceiver::cli {

Runner add_grad_command(CLI::App& sub) {
  struct Args {
    std::string model, inputs, outputs;
    CommonOptions common;
  };
  auto a = std::make_shared<Args>();
  sub.add_option("--model", a->model, "HF model folder (config.json + model.safetensors)")->required()->check(CLI::ExistingDirectory);
  sub.add_option("--inputs", a->inputs, "inputs and labels/targets (.safetensors)")->required()->check(CLI::ExistingFile);
  sub.add_option("--outputs", a->outputs, "where to write loss and gradients (.safetensors)")->required();
  add_common_options(sub, a->common);
  add_nonfinite_option(sub, a->common.allow_nonfinite);
  return [a]() {
    namespace pio = models::perceiver_io;
    apply_common_options(a->common);
    const bool allow = a->common.allow_nonfinite;
    std::unique_ptr<models::Model> model = io::load_model_folder(a->model);
    check_finite_parameters(*model, "grad", a->model, allow);
    const models::TensorMap inputs = io::load_safetensors(a->inputs).tensors;
    check_finite(inputs, "grad", a->inputs, "input", allow);
    // Train mode: BatchNorm on batch statistics; dropout, where a model has any, draws from a
    // fixed seed (Perceiver IO applies no attention dropout).
    model->train(true);
    Rng rng(0);
    const Tensor loss_value = model->loss(model->forward(inputs, nullptr, &rng), inputs);
    autograd::backward(loss_value);
    std::vector<std::pair<std::string, Tensor>> tensors = {{"loss", loss_value.detach()}};
    for (auto& [name, p] : model->named_parameters())
      tensors.emplace_back(name, p.grad().defined() ? p.grad() : Tensor::zeros(p.shape()));
    const Tensor& loss = tensors.front().second;
    check_finite("loss", loss, "grad", a->outputs, "loss", allow);  // nothing is written then
    for (size_t i = 1; i < tensors.size(); ++i)
      check_finite(tensors[i].first, tensors[i].second, "grad", a->outputs, "gradient", allow);
    io::save_safetensors(a->outputs, tensors, {{"format", "pt"}});
    std::printf("loss %.9g, %zu gradients\n", loss.item(), tensors.size() - 1);
    return 0;
  };
}

}  // namespace perceiver::cli
