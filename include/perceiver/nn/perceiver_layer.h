// PerceiverLayer: the pre-LayerNorm attention + MLP block of HF modeling_perceiver
// (PerceiverLayer / PerceiverAttention / PerceiverSelfAttention / PerceiverMLP), used for the
// encoder cross-attention, the latent self-attention blocks and the decoders. Parameter names
// follow HF: attention.self.{layernorm1,layernorm2,query,key,value}, attention.output.dense,
// layernorm, mlp.{dense1,dense2}.
#pragma once

#include <memory>

#include "perceiver/autograd/functions.h"
#include "perceiver/nn/layers.h"

namespace perceiver::nn {

struct PerceiverLayerConfig {
  bool is_cross = false;   // cross: queries from x, keys/values from y; self: all from x
  int64_t q_dim = 0;       // width of x
  int64_t kv_dim = 0;      // width of y (cross only; = q_dim for self)
  int64_t qk_channels = 0; // total query/key width over heads
  int64_t v_channels = 0;  // total value width over heads
  int num_heads = 1;
  int widening_factor = 1;      // MLP hidden = widening_factor * q_dim
  bool use_query_residual = true;
  float dropout = 0.0f;         // on the attention output and MLP output, before each residual
  float drop_path = 0.0f;       // stochastic depth: each residual branch dropped per example
  float layer_norm_eps = 1e-5f;
  float init_std = 0.0f;        // Linear init: > 0 fixed std, <= 0 LeCun 1/sqrt(fan_in)
  // Under activation checkpointing a cross layer over more than kv_chunk inputs forms LN2, K
  // and V kv_chunk inputs at a time (ag::chunked_kv_attention); 4,096 keeps a chunk's K and V at
  // a few MiB (perf_notes.md item 4).
  int64_t kv_chunk = 4096;
};

// Resolves unset (0) qk/v widths with the HF rules (spec section 3) and validates the result.
PerceiverLayerConfig resolve_layer_config(PerceiverLayerConfig c, bool cross_shape_kv = true);

// The rows [own_bm, shared_m] of a cross layer's inputs written out: own (B, M, Co), shared
// (M, Cs) or undefined (then own itself) -> (B, M, Co + Cs).
Tensor full_rows(const Tensor& own, const Tensor& shared);

class PerceiverLayer : public Module {
 public:
  PerceiverLayer(const PerceiverLayerConfig& config, Rng& init_rng);
  // x (B, N, q_dim); y (B, M, kv_dim) for cross layers (ignored for self); key_mask (B, M)
  // additive or undefined; rng drives dropout in training mode. With activation checkpointing
  // on (Module::set_activation_checkpointing) only x and y are kept for backward.
  // y_shared (M, Cs), optional: channels every example shares (position features, no gradient),
  // appended to each example's rows of y, which then holds kv_dim - Cs channels; keys and values
  // are then computed without forming the full rows (ops/kv_projection.h).
  Tensor forward(const Tensor& x, const Tensor& y, const Tensor& key_mask, Rng* rng,
                 const Tensor& y_shared = Tensor()) const;
  const PerceiverLayerConfig& config() const { return config_; }
  // The attention weights of forward(x, y, key_mask): softmax(Q K^T / sqrt(qk / H) + mask) per
  // head, (B, H, N, M) (self layers: M = N). For pictures of what the latents attend to; not
  // differentiable, fp32.
  Tensor attention_probs(const Tensor& x, const Tensor& y, const Tensor& key_mask,
                         const Tensor& y_shared = Tensor()) const;
  // Floats this layer keeps per sample for backward in training (n queries, m inputs; m is
  // ignored by self-attention layers): LN, Q/K/V, attention output, residuals and the MLP.
  // shared_channels > 0: forward gets that many of the inputs' channels as y_shared (no LN(y)).
  int64_t activation_floats(int64_t n, int64_t m, int64_t shared_channels = 0) const;

 private:
  Tensor forward_impl(const Tensor& x, const Tensor& y, const Tensor& key_mask, Rng* rng,
                      const Tensor& y_shared) const;
  ag::KvProjection kv_projection_params() const;  // LN2, key and value of a cross layer

  PerceiverLayerConfig config_;
  std::shared_ptr<LayerNorm> layernorm1_, layernorm2_, layernorm_;
  std::shared_ptr<Linear> query_, key_, value_, out_, dense1_, dense2_;
};

}  // namespace perceiver::nn
