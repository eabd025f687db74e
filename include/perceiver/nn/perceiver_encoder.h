// The Perceiver encoder, one module for the classifier of run configs (2103.03206) and every
// Hugging Face Perceiver IO model (PerceiverEncoder):
//   z = latents                                                  (B, N, D)
//   repeat num_cross_attends times (weight set s = the first, or with share_weights the second
//   for every later one):
//     z = cross_attention_s(z, inputs)                           latents <- inputs (B, M, C)
//     repeat num_blocks times: z = self_attends_s.{0..S-1}(z)    the latent block
// HF's encoder is num_cross_attends 1. Names: cross_attention, self_attends.{i}; the paper's
// extra weight sets cross_attention_{s}, self_attends_{s}.{i}.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "perceiver/nn/perceiver_layer.h"

namespace perceiver::nn {

struct PerceiverEncoderConfig {
  PerceiverLayerConfig cross;  // q_dim = D, kv_dim = C (is_cross is set here)
  PerceiverLayerConfig self;   // q_dim = D (always with the query residual)
  int self_attends_per_block = 1;
  // stochastic depth: self-attend i of S gets drop_path = self_drop_path (i + 1) / S (0: none)
  float self_drop_path = 0.0f;
  int num_blocks = 1;          // latent block repeats with the same weights (0: none, as HF allows)
  int num_cross_attends = 1;
  bool share_weights = true;   // every cross-attend after the first shares one weight set
  bool cross_shape_kv = true;  // HF cross_attention_shape_for_attention "kv" (else "q")
  int num_weight_sets() const;
};

class PerceiverEncoder : public Module {
 public:
  // `where` names the encoder in width errors (where + ".cross_attention: ...").
  PerceiverEncoder(const PerceiverEncoderConfig& config, Rng& init_rng, const std::string& where);

  // latents z (B, N, D), inputs (B, M, C), key_mask (B, M) additive or undefined (padding, used by
  // the cross-attentions); rng drives dropout in training mode. trace (optional) receives z after
  // every layer in order (the first cross-attention, then each self-attention, ...).
  // shared_inputs (M, Cs), optional: channels every example shares (position features), which
  // follow each example's own channels in `inputs` (PerceiverLayer::forward's y_shared).
  Tensor forward(Tensor z, const Tensor& inputs, const Tensor& key_mask, Rng* rng,
                 std::vector<Tensor>* trace = nullptr, const Tensor& shared_inputs = Tensor()) const;

  // Floats one training sample keeps for backward over n latents of width d and m inputs (the
  // trainer's memory estimate): every layer's activations, or with activation checkpointing only
  // the layer boundaries. *largest receives the largest single layer's (backward holds its
  // gradients, and under checkpointing its recomputation, on top).
  // shared_channels: of the inputs' channels, those passed as forward's shared_inputs.
  int64_t activation_floats(int64_t n, int64_t m, bool checkpointing, int64_t* largest,
                            int64_t shared_channels = 0) const;

  const PerceiverEncoderConfig& config() const { return config_; }

  // The first cross-attention's weights over the inputs for latents z: (B, H, N, M).
  Tensor cross_attention_probs(const Tensor& z, const Tensor& inputs, const Tensor& key_mask,
                               const Tensor& shared_inputs = Tensor()) const;

 private:
  struct WeightSet {
    std::shared_ptr<PerceiverLayer> cross;
    std::vector<std::shared_ptr<PerceiverLayer>> self_attends;
  };
  const WeightSet& set_for(int cross_attend) const;

  PerceiverEncoderConfig config_;
  std::vector<WeightSet> sets_;
};

}  // namespace perceiver::nn
