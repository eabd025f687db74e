// Helpers of the model interface (see model.h).
#include "perceiver/models/model.h"

#include "perceiver/core/error.h"

namespace perceiver::models {

const Tensor& require_input(const TensorMap& inputs, const std::string& name, const std::string& who) {
  auto it = inputs.find(name);
  if (it != inputs.end() && it->second.defined()) return it->second;
  std::string given;
  for (const auto& [n, t] : inputs) given += (given.empty() ? "" : ", ") + n;
  throw_error("[", who, "] missing input '", name, "', got inputs: ", given.empty() ? "(none)" : given);
}

Tensor Model::cross_attention_probs(const TensorMap&) const {
  throw_error("[attention] a ", architecture(), " has no latent cross-attention (Perceiver and Perceiver IO models have)");
}

}  // namespace perceiver::models
