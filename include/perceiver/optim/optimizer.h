// Optimizer base class: holds the named parameters (shared handles, updated in place), the
// per-parameter state (first/second moments and a step count, as torch.optim keeps them), the
// weight-decay mask, and strict state save/load for checkpoints. AdamW and LAMB derive from it;
// make_optimizer builds one by name.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "perceiver/core/tensor.h"

namespace perceiver::optim {

using NamedTensor = std::pair<std::string, Tensor>;

// Default weight-decay rule (the usual transformer practice, also the Perceiver's): decay every
// parameter EXCEPT
//   - biases (name ends with ".bias"),
//   - normalisation weights (name contains "norm", which covers "layernorm"),
//   - latent and position arrays (name contains "latents", "position_embeddings" or "pos_emb"),
//   - any tensor of rank <= 1 (scales, gains, biases under other names).
bool default_weight_decay(const std::string& name, const Tensor& t);

struct OptimizerOptions {
  float beta1 = 0.9f;          // [0, 1)
  float beta2 = 0.999f;        // [0, 1)
  float eps = 1e-8f;           // >= 0
  float weight_decay = 0.01f;  // >= 0 (torch.optim.AdamW default)
  // > 0: also keep an exponential moving average of every parameter (update_ema), in [0, 1)
  float ema_decay = 0.0f;
  // Overrides of default_weight_decay by name substring: a parameter whose name contains any
  // decay_exclude entry is never decayed; otherwise one containing any decay_include entry is
  // always decayed; otherwise the default rule decides.
  std::vector<std::string> decay_include;
  std::vector<std::string> decay_exclude;
};

class Optimizer {
 public:
  // Throws Error for invalid options, duplicate names, undefined or non-float32 parameters.
  Optimizer(std::vector<NamedTensor> params, OptimizerOptions options);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update with learning rate lr (finite, >= 0) from the parameters' accumulated gradients.
  // Parameters without a gradient are skipped entirely: their data, moments and step count stay
  // as they are (torch.optim semantics).
  virtual void step(float lr) = 0;
  virtual std::string name() const = 0;  // "adamw" | "lamb"

  // Drops every parameter's gradient.
  void zero_grad();
  // Number of step() calls so far (restored by load_state).
  int64_t step_count() const { return step_count_; }

  // Whether the parameter called `name` gets weight decay; throws for an unknown name.
  bool applies_weight_decay(const std::string& name) const;
  const OptimizerOptions& options() const { return options_; }
  const std::vector<NamedTensor>& params() const { return params_; }

  // Exponential moving average of the parameters (options().ema_decay > 0), started from their
  // values at construction: after each step(), avg = d avg + (1 - d) p with the decay warmed up
  // over the first updates, d = min(ema_decay, (1 + t) / (10 + t)) at step t (the TensorFlow
  // ExponentialMovingAverage num_updates rule), so early averages are not dominated by the
  // initial weights. No-op without an average.
  bool has_ema() const { return options_.ema_decay > 0.0f; }
  void update_ema();
  // Exchanges the live parameters' values with their averages (call twice to restore): evaluate
  // or export the averaged model, then continue training the live one.
  void swap_ema();

  // State for checkpoints, per parameter in order: "<param>.exp_avg", "<param>.exp_avg_sq"
  // (float32, the parameter's shape; handles sharing the live state), "<param>.step" (int32
  // scalar: the updates this parameter has received) and, with an average, "<param>.ema".
  std::vector<NamedTensor> state_tensors() const;
  // Restores state_tensors() output and the step count. Strict: every missing name, unexpected
  // name, shape/dtype mismatch and bad step value is listed in one Error; nothing changes
  // unless everything matches.
  void load_state(const std::map<std::string, Tensor>& state, int64_t step);

 protected:
  struct ParamState {
    Tensor exp_avg;     // m
    Tensor exp_avg_sq;  // v
    Tensor ema;         // the parameter's moving average (has_ema() only)
    int64_t step = 0;
    bool decay = false;
  };

  // Validates lr and counts the step; call at the start of step().
  void begin_step(float lr);
  // The gradient of parameter i, validated against it, or an undefined tensor if it has none.
  Tensor grad_of(size_t i) const;
  // Bias corrections 1 - beta^t for a parameter at step t (computed in double).
  float bias_correction1(int64_t t) const;
  float bias_correction2(int64_t t) const;

  std::vector<NamedTensor> params_;
  std::vector<ParamState> state_;
  OptimizerOptions options_;

 private:
  int64_t step_count_ = 0;
};

// Builds "adamw" or "lamb"; any other name throws an Error listing the allowed names.
std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<NamedTensor> params,
                                          const OptimizerOptions& options = {});

}  // namespace perceiver::optim
