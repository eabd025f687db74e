// Perceiver classifier: construction from a config and the forward pass.
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/models/perceiver.h"

#include <algorithm>

#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/functions_conv.h"
#include "perceiver/models/audio_filterbank.h"
#include "perceiver/nn/perceiver_encoder.h"
#include "perceiver/models/perceiver_io/position_encoding.h"

namespace perceiver::models {

Perceiver::Perceiver(const PerceiverConfig& config, uint64_t init_seed) : config_(config) {
  const auto& c = config_;
  Rng rng(init_seed);
  const float linear_std = c.init == "normal" ? c.init_std : 0.0f;
  // HF generate_fourier_features over the linspace(-1, 1) grid: [pos, sin, cos] (spec 5.2-5.3);
  // with coordinates the positions are the inputs' own (forward)
  if (c.input_positions == "grid") positions_ = c.fourier_spec().grid(c.image_size);
  // HF PerceiverEmbeddings: latents (N, D), trained from N(0, init_std) (truncated).
  if (c.input_projection > 0) {
    auto projection = std::make_shared<nn::Linear>(
        c.element_channels(), (c.input_projection_type == "log_power" ? 2 : 1) * c.input_projection, true, rng, linear_std);
    if (c.input_projection_init == "mel") {
      // log_power filters start as a mel-spaced Gabor filterbank (a log-mel-like spectrogram), bias 0
      Tensor weight = projection->weight(), bias = projection->bias();  // handles share storage
      mel_gabor_filterbank(c.element_channels(), c.input_projection, c.sample_rate, weight.data<float>());
      std::fill_n(bias.data<float>(), bias.numel(), 0.0f);
    }
    if (c.input_projection_trainable) {
      input_projection_ = register_module("perceiver.input_preprocessor.projection", projection);
    } else {
      // a fixed filterbank: the same names, saved and loaded as buffers, never trained
      projection_weight_ = register_buffer("perceiver.input_preprocessor.projection.weight",
                                           projection->weight().detach().clone());
      projection_bias_ = register_buffer("perceiver.input_preprocessor.projection.bias",
                                         projection->bias().detach().clone());
    }
  }
  latents_ = register_parameter("perceiver.embeddings.latents",
                                nn::init_truncated_normal({c.num_latents, c.d_latents}, c.init_std, rng));
  // the encoder: num_cross_attends x (cross-attend, num_blocks x latent block), weight sets shared
  // after the first cross-attend with share_weights (the paper's scheme)
  // the settings both kinds of layer share
  auto layer = [&](int heads, int widening) {
    nn::PerceiverLayerConfig l;
    l.q_dim = c.d_latents;
    l.qk_channels = c.qk_channels;
    l.v_channels = c.v_channels;
    l.num_heads = heads;
    l.widening_factor = widening;
    l.dropout = c.dropout;
    l.init_std = linear_std;
    return l;
  };
  nn::PerceiverEncoderConfig enc;
  enc.cross = layer(c.cross_attention_heads, c.cross_attention_widening_factor);
  enc.cross.kv_dim = c.input_width();
  enc.cross.use_query_residual = c.use_query_residual;
  enc.self = layer(c.self_attention_heads, c.self_attention_widening_factor);
  enc.self_attends_per_block = c.self_attends_per_block;
  enc.self_drop_path = c.drop_path;
  enc.num_blocks = c.num_blocks;
  enc.num_cross_attends = c.num_cross_attends;
  enc.share_weights = c.share_weights;
  enc.cross_shape_kv = c.cross_attention_shape_for_attention == "kv";
  encoder_ = register_module("perceiver.encoder",
                             std::make_shared<nn::PerceiverEncoder>(enc, rng, "[Perceiver] perceiver.encoder"));
  if (c.head == "query") {
    // HF PerceiverClassificationDecoder -> PerceiverBasicDecoder with a trainable (1, D) query.
    query_ = register_parameter("perceiver.decoder.decoder.output_position_encodings.position_embeddings",
                                nn::init_truncated_normal({1, c.d_latents}, c.init_std, rng));
    nn::PerceiverLayerConfig dec;
    dec.is_cross = true;
    dec.q_dim = c.d_latents;
    dec.kv_dim = c.d_latents;
    dec.num_heads = c.decoder_heads;
    dec.widening_factor = 1;
    dec.use_query_residual = true;
    dec.init_std = linear_std;
    decoder_ = register_module("perceiver.decoder.decoder.decoding_cross_attention",
                               std::make_shared<nn::PerceiverLayer>(dec, rng));
    final_layer_ = register_module("perceiver.decoder.decoder.final_layer",
                                   std::make_shared<nn::Linear>(c.d_latents, c.num_classes, true, rng, linear_std));
  } else {
    if (c.head_layernorm)
      head_norm_ = register_module("perceiver.decoder.layernorm", std::make_shared<nn::LayerNorm>(c.d_latents));
    final_layer_ = register_module("perceiver.decoder.final_layer",
                                   std::make_shared<nn::Linear>(c.d_latents, c.num_classes, true, rng, linear_std));
  }
}

namespace {

// Fourier features of the positions held in the first d channels of each element (d = the
// number of max_resolution entries): x (B, M, C) -> (B, M, F).
Tensor coordinate_features(const Tensor& x, const PerceiverConfig& c) {
  const int64_t b = x.dim(0), m = c.num_inputs(), d = static_cast<int64_t>(c.max_resolution.size());
  Tensor pos = Tensor::empty({b * m, d});
  const float* src = x.f32();
  float* dst = pos.f32();
  for (int64_t i = 0; i < b * m; ++i)
    for (int64_t k = 0; k < d; ++k) dst[i * d + k] = src[i * c.in_channels + k];
  const perceiver_io::FourierSpec f = c.fourier_spec();
  const Tensor features = perceiver_io::generate_fourier_features(pos, f.num_bands, f.max_resolution, f.concat_pos,
                                                                   f.sine_only);
  return features.reshape({b, m, f.output_size()});
}

}  // namespace

Perceiver::EncoderInputs Perceiver::encoder_input(const Tensor& images, Rng* rng) const {
  const auto& c = config_;
  const int64_t m = c.num_inputs();
  check(images.defined() && images.dtype() == DType::kF32, "[Perceiver] images must be float32");
  const int64_t b = images.dim(0);
  Shape expect{b};
  for (int64_t d : c.image_size) expect.push_back(d);
  Shape expect_c = expect;
  expect_c.push_back(c.in_channels);
  check(images.shape() == expect_c || (c.in_channels == 1 && images.shape() == expect),
        "[Perceiver] images must be ", shape_str(expect_c), c.in_channels == 1 ? " or " + shape_str(expect) : "",
        ", got ", shape_str(images.shape()));

  // inputs = concat([pixels, fourier(pos)], channels)            (B, M, C)
  Tensor pixels;
  if (c.input_patch_size > 1) {
    // pixels = each pixel's k x k neighbourhood, zero padded     (B, M, k*k*channels)
    Tensor grid = ag::reshape(images, {b, c.image_size[0], c.image_size[1], c.in_channels});
    pixels = ag::reshape(ag::image_patches(grid, static_cast<int>(c.input_patch_size)), {b, m, c.element_channels()});
  } else {
    pixels = ag::reshape(images, {b, m, c.in_channels});
  }
  auto project = [&](const Tensor& x) {  // Linear(x), trained or fixed
    return input_projection_ ? input_projection_->forward(x) : ag::linear(x, projection_weight_, projection_bias_);
  };
  if (c.input_projection > 0 && c.input_projection_type == "gelu") {
    // learned projection of each element: GELU(Linear(pixels))            (B, M, P)
    pixels = ag::gelu(project(pixels));
  } else if (c.input_projection > 0) {
    // log power of filter pairs: log(mean_pair(Linear(pixels)^2) + 1e-4)   (B, M, P)
    Tensor y = project(pixels);                                           // (B, M, 2P)
    Tensor power = ag::mean(ag::reshape(ag::mul(y, y), {b, m, c.input_projection, 2}), 3);
    pixels = ag::log(power, 1e-4f);
  }
  // features = (features - mean) [/ sqrt(var + 1e-5)] over the M elements, per example and channel
  // (cepstral mean [and variance] normalisation)
  if (c.input_variance_normalization) {
    pixels = ag::standardize(pixels, 1, 1e-5f);
  } else if (c.input_mean_normalization) {
    pixels = ag::center(pixels, 1);
  }
  // SpecAugment: features *= mask, 0 on random channel bands and element spans (training only)
  if (is_training() && (c.channel_masks > 0 || c.element_masks > 0)) {
    check(rng != nullptr, "[Perceiver] feature masking in training mode needs an Rng");
    pixels = ag::mul(pixels, spec_augment_mask(b, m, c.feature_width(), c.channel_masks, c.channel_mask_width,
                                                c.element_masks, c.element_mask_width, *rng));
  }
  // the grid's features are the same for every example: the encoder appends them to each row
  if (c.input_positions == "grid") return {pixels, positions_};  // (B, M, C - F), (M, F)
  // features of each element's own position: its first d channels             (B, M, F)
  check(!images.requires_grad(), "[Perceiver] gradients with respect to input coordinates are not supported "
        "(input_positions \"coordinates\")");
  return {ag::concat_last(pixels, coordinate_features(images.detach(), c)), Tensor()};
}

Tensor Perceiver::cross_attention_probs(const TensorMap& inputs) const {
  autograd::NoGradGuard no_grad;
  const EncoderInputs x = encoder_input(require_input(inputs, "inputs", "Perceiver"), nullptr);
  return encoder_->cross_attention_probs(ag::expand_leading(latents_, x.own.dim(0)), x.own, Tensor(), x.shared);
}

Tensor Perceiver::forward(const Tensor& images, Rng* rng) const {
  const auto& c = config_;
  // inputs = rows [pixels or patches (projected, normalised), position features]  (B, M, C)
  const EncoderInputs inputs = encoder_input(images, rng);
  const int64_t b = inputs.own.dim(0);
  // z = latents broadcast to the batch                           (B, N, D)
  Tensor z = ag::expand_leading(latents_, b);
  z = encoder_->forward(z, inputs.own, Tensor(), rng, nullptr, inputs.shared);  // (B, N, D)
  if (c.head == "query") {
    // logits = final_layer(decoding_cross_attention(query, z))[:, 0]   (HF classification decoder)
    Tensor q = ag::expand_leading(query_, b);                   // (B, 1, D)
    Tensor out = final_layer_->forward(decoder_->forward(q, z, Tensor(), rng));
    return ag::reshape(out, {b, c.num_classes});
  }
  // logits = final_layer([LN](mean over latents))  (paper: average the latents, then linear)
  Tensor pooled = ag::mean(z, 1);                               // (B, D)
  if (head_norm_) pooled = head_norm_->forward(pooled);
  return final_layer_->forward(pooled);
}

TensorMap Perceiver::forward(const TensorMap& inputs, TensorMap* trace, Rng* rng) const {
  (void)trace;
  return {{"logits", forward(require_input(inputs, "inputs", "Perceiver"), rng)}};
}

nlohmann::json Perceiver::hub_config() const {
  nlohmann::json j = config_.to_json();
  j["architectures"] = {kArchitecture};
  return j;
}

int64_t Perceiver::training_activation_bytes(bool checkpointing) const {
  const auto& c = config_;
  const int64_t m = c.num_inputs(), n = c.num_latents;
  // pixels (+ their projection and its GELU), and the [pixels, Fourier] inputs unless the grid's
  // Fourier features stay shared (then the cross-attention never forms those rows)
  const bool shared = c.input_positions == "grid";
  int64_t kept = m * (c.element_channels() + (c.input_projection_type == "log_power" ? 5 : 2) * c.input_projection +
                      (shared ? 0 : c.input_width()));
  // the centred features, and the masked features with their mask
  kept += m * c.feature_width() * ((c.input_mean_normalization ? 1 : 0) +
                                   (c.channel_masks > 0 || c.element_masks > 0 ? 2 : 0));
  int64_t largest = 0;                                    // the biggest single layer
  kept += encoder_->activation_floats(n, m, checkpointing, &largest, shared ? c.input_width() - c.feature_width() : 0);
  if (decoder_) kept += decoder_->activation_floats(1, n);
  // Backward holds the gradients of one layer's activations at a time, and with checkpointing
  // also that layer's recomputed activations: the largest layer once or twice more.
  return static_cast<int64_t>(sizeof(float)) * (kept + (checkpointing ? 2 : 1) * largest);
}

}  // namespace perceiver::models
