// One ViT encoder block, HF ViTLayer (pre-LayerNorm Transformer block):
//   h = h + attention.output.dense(MHA(layernorm_before(h)))
//   h = h + output.dense(gelu(intermediate.dense(layernorm_after(h))))
// Parameter names are HF's, relative to "vit.encoder.layer.{i}.": attention.attention.{query,
// key,value}.{weight,bias}, attention.output.dense.*, intermediate.dense.*, output.dense.*,
// layernorm_before.*, layernorm_after.*.
#pragma once

#include <memory>

#include "perceiver/core/random.h"
#include "perceiver/models/vit/vit_config.h"
#include "perceiver/nn/layers.h"

namespace perceiver::models {

class ViTLayer : public nn::Module {
 public:
  ViTLayer(const ViTConfig& config, Rng& rng);

  // h (B, T, D) -> (B, T, D). When `attention_output` is given it receives the attention block's
  // output (after attention.output.dense, before the residual add). rng drives hidden dropout in
  // training mode (may be null when dropout is 0).
  // With activation checkpointing on (and no attention_output requested) only h is kept.
  Tensor forward(const Tensor& h, Rng* rng = nullptr, Tensor* attention_output = nullptr) const;

 private:
  Tensor forward_impl(const Tensor& h, Rng* rng, Tensor* attention_output) const;

  int heads_;
  float dropout_;
  float attention_dropout_;
  std::shared_ptr<nn::LayerNorm> layernorm_before_, layernorm_after_;
  std::shared_ptr<nn::Linear> query_, key_, value_, attention_out_;
  std::shared_ptr<nn::Linear> intermediate_, output_;
};

}  // namespace perceiver::models
