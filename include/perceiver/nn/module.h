// Module: owns named parameters and child modules. Names are the Hugging Face segments, so
// named_parameters() yields HF dotted keys ("encoder.cross_attention.attention.self.query.weight").
// visit_parameters is the single walker used by loading, saving, optimizers and parity tests
// (gemma.cpp ForEachTensor).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "perceiver/core/precision.h"
#include "perceiver/core/tensor.h"

namespace perceiver::nn {

using NamedTensor = std::pair<std::string, Tensor>;

class Module {
 public:
  virtual ~Module() = default;

  // fn(full_dotted_name, parameter) for every parameter, depth first in registration order.
  void visit_parameters(const std::function<void(const std::string&, Tensor&)>& fn,
                        const std::string& prefix = "");
  std::vector<NamedTensor> named_parameters();
  int64_t num_parameters();
  // Buffers: state that is saved and loaded but not trained (BatchNorm running statistics).
  void visit_buffers(const std::function<void(const std::string&, Tensor&)>& fn, const std::string& prefix = "");
  // The state dict: parameters, then buffers, under their full names (the HF state_dict).
  std::vector<NamedTensor> state_dict();

  // The one strict loader: copies tensors into the parameters and buffers by name. Strict: every
  // missing name, unexpected name and shape/dtype mismatch is listed in one Error (prefixed by
  // `what`, e.g. the file name); nothing is changed unless all match. Non-strict mode loads what
  // matches and ignores the rest. With share_storage the model's tensors take over the given
  // tensors' data instead of copying (for a state dict read from a file and dropped afterwards,
  // so the weights are held once); tensors that share one storage (tied weights) are copied.
  void load_state_dict(const std::map<std::string, Tensor>& tensors, const std::string& what,
                       bool strict = true, bool share_storage = false);

  void train(bool on = true);  // sets the mode recursively (dropout, augment-only paths)
  bool is_training() const { return training_; }

  // Precision of this module and its children (core/precision.h). kBF16 runs every Linear and
  // attention in bf16 (fp32 accumulation). In training mode with fp32 weights that is
  // mixed-precision training: each Linear multiplies by the bf16 rounding of its fp32 master
  // weight, saves bf16 activations for backward, and its gradients are fp32 (train.precision
  // "bf16"). With keep_f32_weights (default) the fp32 parameters stay (loading, saving and
  // optimizers use them; switching back to kF32 restores the exact fp32 model) and each weight's
  // bf16 rounding is made when first used after a change and remembered beside it
  // (ops::bf16_copy_of: never stale, whoever writes the weights); without it the weight
  // parameters themselves become bfloat16 (half the memory: for inference-only runs; switching
  // back to kF32 widens them, the rounding stays, and loading fp32 weights into them is refused;
  // a later set_precision(kBF16) with keep_f32_weights cannot bring the fp32 values back). With
  // bf16 weight parameters (keep_f32_weights false) gradients on throw. Not to be called while
  // another thread runs a forward pass of this model.
  void set_precision(Precision p, bool keep_f32_weights = true);
  bool keeps_f32_weights() const { return keep_f32_weights_; }
  Precision precision() const { return precision_; }

  // Activation checkpointing in training (autograd/checkpoint.h): modules that support it
  // (PerceiverLayer, ViTLayer) keep only their inputs and recompute their forward in backward.
  // Set recursively; off by default.
  void set_activation_checkpointing(bool on);
  bool activation_checkpointing() const { return checkpointing_; }
  // True when a parameter of this module or a child requires grad.
  bool any_parameter_requires_grad() const;

 protected:
  // Registers a parameter (marks it requires_grad) and returns a handle sharing its data; the
  // module keeps that handle as a member. Visitors change parameter data in place (copy_from),
  // never rebind the handle, so module members and the registry always agree.
  Tensor register_parameter(const std::string& name, Tensor value);
  // Registers a buffer (saved and loaded, never trained) and returns a handle sharing its data.
  Tensor register_buffer(const std::string& name, Tensor value);
  // Called on this module after its precision changed or its parameters were reloaded.
  virtual void on_precision_changed() {}
  // A child registered under "" is transparent: its names appear without a prefix (a wrapper
  // that keeps the names of the model it wraps).
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  std::vector<NamedTensor> params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  Precision precision_ = Precision::kF32;
  bool keep_f32_weights_ = true;
  bool checkpointing_ = false;
};

}  // namespace perceiver::nn
