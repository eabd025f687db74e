// The Perceiver encoder shared by the classifier and Perceiver IO (see the header).
#include "perceiver/nn/perceiver_encoder.h"

#include <algorithm>

#include "perceiver/core/error.h"

namespace perceiver::nn {

int PerceiverEncoderConfig::num_weight_sets() const {
  return share_weights ? std::min(num_cross_attends, 2) : num_cross_attends;
}

PerceiverEncoder::PerceiverEncoder(const PerceiverEncoderConfig& config, Rng& init_rng, const std::string& where)
    : config_(config) {
  const auto& c = config_;
  check(c.num_cross_attends >= 1 && c.num_blocks >= 0 && c.self_attends_per_block >= 0, where,
        ": expected num_cross_attends >= 1, num_blocks >= 0 and self_attends_per_block >= 0, got ", c.num_cross_attends,
        ", ", c.num_blocks, " and ", c.self_attends_per_block);
  // resolves a layer's widths with the HF rules, naming the layer in errors
  auto make = [&](const std::string& name, PerceiverLayerConfig lc) {
    try {
      lc = resolve_layer_config(lc, c.cross_shape_kv);
    } catch (const Error& e) {
      throw_error(where, ".", name, ": ", e.what());
    }
    return register_module(name, std::make_shared<PerceiverLayer>(lc, init_rng));
  };
  PerceiverLayerConfig cross = c.cross, self = c.self;
  cross.is_cross = true;
  self.is_cross = false;
  self.use_query_residual = true;
  for (int s = 0; s < c.num_weight_sets(); ++s) {
    const std::string suffix = s == 0 ? "" : "_" + std::to_string(s);
    WeightSet set;
    set.cross = make("cross_attention" + suffix, cross);
    for (int i = 0; i < c.self_attends_per_block; ++i) {
      PerceiverLayerConfig layer = self;
      layer.drop_path = c.self_drop_path * static_cast<float>(i + 1) / static_cast<float>(c.self_attends_per_block);
      set.self_attends.push_back(make("self_attends" + suffix + "." + std::to_string(i), layer));
    }
    sets_.push_back(std::move(set));
  }
}

const PerceiverEncoder::WeightSet& PerceiverEncoder::set_for(int cross_attend) const {
  return sets_[static_cast<size_t>(config_.share_weights ? std::min(cross_attend, 1) : cross_attend)];
}

Tensor PerceiverEncoder::cross_attention_probs(const Tensor& z, const Tensor& inputs, const Tensor& key_mask,
                                               const Tensor& shared_inputs) const {
  return set_for(0).cross->attention_probs(z, inputs, key_mask, shared_inputs);
}

Tensor PerceiverEncoder::forward(Tensor z, const Tensor& inputs, const Tensor& key_mask, Rng* rng,
                                 std::vector<Tensor>* trace, const Tensor& shared_inputs) const {
  for (int i = 0; i < config_.num_cross_attends; ++i) {
    const WeightSet& set = set_for(i);
    z = set.cross->forward(z, inputs, key_mask, rng, shared_inputs);  // latents <- inputs
    if (trace) trace->push_back(z.detach());
    for (int r = 0; r < config_.num_blocks; ++r)
      for (const auto& layer : set.self_attends) {
        z = layer->forward(z, Tensor(), Tensor(), rng);  // latents <- latents
        if (trace) trace->push_back(z.detach());
      }
  }
  return z;
}

int64_t PerceiverEncoder::activation_floats(int64_t n, int64_t m, bool checkpointing, int64_t* largest,
                                            int64_t shared_channels) const {
  int64_t kept = 0, big = 0;
  for (int i = 0; i < config_.num_cross_attends; ++i) {
    const WeightSet& set = set_for(i);
    const int64_t d = set.cross->config().q_dim;
    const int64_t cross = set.cross->activation_floats(n, m, shared_channels);
    kept += checkpointing ? n * d : cross;
    big = std::max(big, cross);
    for (int r = 0; r < config_.num_blocks; ++r)
      for (const auto& layer : set.self_attends) {
        const int64_t self = layer->activation_floats(n, 0);
        kept += checkpointing ? n * d : self;
        big = std::max(big, self);
      }
  }
  if (largest) *largest = std::max(*largest, big);
  return kept;
}

}  // namespace perceiver::nn
