// ViT encoder block (HF ViTLayer): construction and the pre-LN forward pass.
#include "perceiver/models/vit/vit_layer.h"

#include <cmath>

#include "perceiver/autograd/checkpoint.h"
#include "perceiver/autograd/functions.h"

namespace perceiver::models {

ViTLayer::ViTLayer(const ViTConfig& c, Rng& rng)
    : heads_(static_cast<int>(c.num_attention_heads)), dropout_(c.dropout), attention_dropout_(c.attention_dropout) {
  const float std = c.init == "normal" ? c.init_std : 0.0f;  // <= 0: LeCun 1/sqrt(fan_in)
  const int64_t d = c.hidden_size;
  query_ = register_module("attention.attention.query", std::make_shared<nn::Linear>(d, d, c.qkv_bias, rng, std));
  key_ = register_module("attention.attention.key", std::make_shared<nn::Linear>(d, d, c.qkv_bias, rng, std));
  value_ = register_module("attention.attention.value", std::make_shared<nn::Linear>(d, d, c.qkv_bias, rng, std));
  attention_out_ = register_module("attention.output.dense", std::make_shared<nn::Linear>(d, d, true, rng, std));
  intermediate_ = register_module("intermediate.dense",
                                  std::make_shared<nn::Linear>(d, c.intermediate_size, true, rng, std));
  output_ = register_module("output.dense", std::make_shared<nn::Linear>(c.intermediate_size, d, true, rng, std));
  layernorm_before_ = register_module("layernorm_before", std::make_shared<nn::LayerNorm>(d, c.layer_norm_eps));
  layernorm_after_ = register_module("layernorm_after", std::make_shared<nn::LayerNorm>(d, c.layer_norm_eps));
}

Tensor ViTLayer::forward(const Tensor& h, Rng* rng, Tensor* attention_output) const {
  if (!activation_checkpointing() || attention_output != nullptr)
    return forward_impl(h, rng, attention_output);
  return ag::checkpoint([this](const std::vector<Tensor>& in, Rng* r) { return forward_impl(in[0], r, nullptr); },
                        {h}, rng, any_parameter_requires_grad());
}

Tensor ViTLayer::forward_impl(const Tensor& h, Rng* rng, Tensor* attention_output) const {
  const bool drop = is_training() && dropout_ > 0.0f;
  check(!drop || rng != nullptr, "[ViTLayer] dropout in training mode needs an Rng");
  check(!is_training() || attention_dropout_ == 0.0f, "[ViTLayer] attention_probs_dropout_prob = ",
        attention_dropout_, " is not implemented in training mode; set it to 0");
  const int64_t d = h.dim(-1);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d / heads_));  // head_dim ** -0.5

  // ViTSelfAttention(layernorm_before(h)): query, key, value of the normalised tokens
  // mixed-precision training rounds x once to bf16 for its three products
  const bool mixed = precision() == Precision::kBF16 && is_training();
  Tensor x = layernorm_before_->forward(h);
  if (mixed) x = ag::to_bf16(x);
  Tensor q = query_->forward(x);
  Tensor k = key_->forward(x);
  Tensor v = value_->forward(x);
  // softmax(q k^T * scale) v per head (contiguous head_dim channel blocks), heads concatenated
  Tensor ctx = ag::attention(q, k, v, heads_, scale, Tensor(),
                             nn::attention_precision(precision(), q.dim(1), k.dim(1), q.dim(2) / heads_));
  // ViTSelfOutput: dense(context), dropout
  Tensor a = attention_out_->forward(ctx);
  if (drop) a = ag::dropout(a, dropout_, true, *rng);
  if (attention_output) *attention_output = a;
  // first residual: attention_output + hidden_states
  Tensor h1 = ag::add(a, h);
  // ViTIntermediate: gelu(dense(layernorm_after(h1)))
  Tensor m = ag::gelu(intermediate_->forward(layernorm_after_->forward(h1)));
  // ViTOutput: dense(m), dropout, + h1 (second residual)
  Tensor o = output_->forward(m);
  if (drop) o = ag::dropout(o, dropout_, true, *rng);
  return ag::add(o, h1);
}

}  // namespace perceiver::models
