// The one model interface every command, the trainer and the benchmarks use: named tensors in,
// named tensors out, the task loss, parameters and buffers under their Hugging Face names (the
// nn::Module visitors), and the config.json that describes the model. Implemented by the six
// Perceiver IO task models, ViT and the Perceiver classifier; models/registry.h builds any of
// them from a config.json by its class name.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "perceiver/core/random.h"
#include "perceiver/nn/module.h"

namespace perceiver::models {

using TensorMap = std::map<std::string, Tensor>;

class Model : public nn::Module {
 public:
  // The class name written in config.json "architectures" ("PerceiverForMaskedLM", ...).
  virtual std::string architecture() const = 0;
  // inputs by name ("inputs", "attention_mask", "pixel_values", "inputs.<modality>", ...) ->
  // outputs ("logits" or "logits.<modality>"). trace (optional) receives the intermediate
  // tensors under the fixtures' names; rng drives dropout in training mode.
  virtual TensorMap forward(const TensorMap& inputs, TensorMap* trace = nullptr, Rng* rng = nullptr) const = 0;
  // The task's training loss on forward() outputs, against the targets in `inputs`.
  virtual Tensor loss(const TensorMap& outputs, const TensorMap& inputs) const = 0;
  // The names loss() reads from the inputs ("labels", "target", "target.<modality>").
  virtual std::vector<std::string> target_names() const = 0;
  // The hub-layout config.json of this model ("architectures", "model_type", its fields).
  virtual nlohmann::json hub_config() const = 0;
  // The first cross-attention's weights of the latents over the encoder inputs, (B, H, N, M),
  // for pictures of what the latents look at (`perceiver attention`). Models without a latent
  // cross-attention (ViT, BoTNet) throw.
  virtual Tensor cross_attention_probs(const TensorMap& inputs) const;
};

// inputs.at(name), or "[who] missing input 'name', got inputs: a, b" when it is absent.
const Tensor& require_input(const TensorMap& inputs, const std::string& name, const std::string& who);

}  // namespace perceiver::models
