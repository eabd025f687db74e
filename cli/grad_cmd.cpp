// `perceiver grad --model DIR --inputs IN.safetensors --outputs OUT.safetensors`: the task's
// training loss (train mode) on the labels / targets in the inputs ("labels", "target",
// "target.<m>"), written as "loss" plus the gradient of every parameter under its HF name (the
// layout of the fixtures' grads.safetensors; unused parameters get zeros).
#include <cstdio>

#include "commands.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/models/perceiver_io/model_folder.h"

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
  return [a]() {
    namespace pio = models::perceiver_io;
    apply_common_options(a->common);
    std::unique_ptr<pio::PerceiverIO> model = pio::load_model_folder(a->model);
    const pio::TensorMap inputs = io::load_safetensors(a->inputs).tensors;
    model->train(true);  // BatchNorm on batch statistics; attention dropout is not applied
    Tensor loss = model->loss(model->forward(inputs), inputs);
    autograd::backward(loss);
    std::vector<std::pair<std::string, Tensor>> tensors{{"loss", loss.detach()}};
    for (auto& [name, p] : model->named_parameters())
      tensors.emplace_back(name, p.grad().defined() ? p.grad() : Tensor::zeros(p.shape()));
    io::save_safetensors(a->outputs, tensors, {{"format", "pt"}});
    std::printf("loss %.9g, %zu gradients\n", loss.item(), tensors.size() - 1);
    return 0;
  };
}

}  // namespace perceiver::cli
