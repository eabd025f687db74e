// Configuration of the Perceiver classifier (arXiv 2103.03206) over grid inputs (images), read
// from the "model" object of a JSON config with strict validation.
#pragma once

#include <nlohmann/json.hpp>

#include "perceiver/core/error.h"
#include <string>
#include <vector>

namespace perceiver::models {

namespace perceiver_io {
struct FourierSpec;
}

struct PerceiverConfig {
  // Input array: (H, W) grid of `in_channels` values + Fourier position features, concatenated.
  std::vector<int64_t> image_size{28, 28};
  int64_t in_channels = 1;
  // > 1 (odd, 2-D images): each pixel's channels become its k x k neighbourhood, zero padded
  // (k*k*in_channels values, the 3x3-patch input of Perceiver IO's optical flow model); still one
  // input element per pixel, no convolution. 1: the pixel alone.
  int64_t input_patch_size = 1;
  // > 0: each input element's channels pass through a learned GELU(Linear(in_channels -> this))
  // before the Fourier features are appended (a learned filterbank for waveform frames); 0: none.
  int64_t input_projection = 0;
  // "gelu": GELU(Linear(x)); "log_power": log(mean of squared pairs of Linear(x) -> 2 P) + 1e-4), a
  // learned filterbank's log power, invariant to the phase of a waveform within a frame.
  std::string input_projection_type = "gelu";
  // Start of the "log_power" filters: "random" (the Linear init) or "mel" (a mel-spaced Gabor
  // filterbank, models/audio_filterbank.h, at `sample_rate` Hz; the filters stay trainable).
  std::string input_projection_init = "random";
  double sample_rate = 8000.0;
  // false: the input projection is fixed (kept and saved as buffers under the same names).
  bool input_projection_trainable = true;
  // true: each example's element features (projected, or raw channels) minus their mean over the
  // M elements, per channel: cepstral mean normalisation of log-mel frames, which removes a
  // speaker's or microphone's fixed spectral tilt.
  bool input_mean_normalization = false;
  // Also divide each channel by its standard deviation over the M elements (cepstral mean and
  // variance normalisation, eps 1e-5): removes a recording's dynamic range. Needs the mean one.
  bool input_variance_normalization = false;
  // SpecAugment-style masking in training only (Park et al. 2019): `channel_masks` bands of up to
  // `channel_mask_width` consecutive feature channels and `element_masks` spans of up to
  // `element_mask_width` consecutive input elements (time frames for audio) are set to 0 (the
  // mean, with input_mean_normalization) in each example; widths drawn uniformly from [0, width].
  int channel_masks = 0;
  int64_t channel_mask_width = 0;
  int element_masks = 0;
  int64_t element_mask_width = 0;
  // Where the Fourier features' positions come from: "grid" (the linspace(-1, 1) grid over
  // image_size) or "coordinates" (each element's first d channels, d = max_resolution's length:
  // a point cloud's (x, y, z) in the unit sphere; image_size is then [points]).
  std::string input_positions = "grid";
  int64_t num_fourier_bands = 8;
  std::vector<int64_t> max_resolution{28, 28};  // Nyquist of the training resolution
  bool concat_pos = true;
  bool sine_only = false;
  // Latent array (N x D).
  int64_t num_latents = 64;
  int64_t d_latents = 128;
  // Attention widths (0 = HF default rules) and heads.
  int64_t qk_channels = 0;
  int64_t v_channels = 0;
  int cross_attention_heads = 1;
  int self_attention_heads = 4;
  int cross_attention_widening_factor = 1;
  int self_attention_widening_factor = 2;
  bool use_query_residual = true;
  std::string cross_attention_shape_for_attention = "kv";
  // Depth: num_cross_attends x (cross-attend, then num_blocks x self_attends_per_block
  // self-attention layers). share_weights: the paper's scheme, all cross-attends (and their
  // latent blocks) after the first share one set of weights.
  int num_cross_attends = 1;
  int self_attends_per_block = 2;
  int num_blocks = 1;
  bool share_weights = true;
  // Head: "average" (mean over latents, [LayerNorm], Linear) or "query" (HF classification
  // decoder: a learned query cross-attends into the latents, then Linear).
  std::string head = "average";
  bool head_layernorm = true;
  int decoder_heads = 1;
  int64_t num_classes = 10;
  float dropout = 0.0f;
  // Stochastic depth over the latent self-attends (Huang et al. 2016's linear rule): self-attend
  // i of S drops each of its two residual branches, per example, with probability
  // drop_path (i + 1) / S; block repeats (num_blocks) reuse the layers and their rates.
  float drop_path = 0.0f;
  // Initialisation from scratch: "lecun" (Linear std 1/sqrt(fan_in)) or "normal" (every Linear
  // N(0, init_std), as HF). Latents and the decoder query always use N(0, init_std).
  std::string init = "lecun";
  float init_std = 0.02f;

  int64_t num_inputs() const;        // M = prod(image_size)
  int64_t input_width() const;       // C = (input_projection or in_channels) + Fourier width
  int64_t feature_width() const;     // input_projection or element_channels (before the Fourier features)
  int64_t element_channels() const;  // in_channels * input_patch_size^2: one element's values
  perceiver_io::FourierSpec fourier_spec() const;
  int num_weight_sets() const;       // distinct (cross-attend + latent block) weight sets
  nlohmann::json to_json() const;
};

// Reads and validates `j` (the "model" object); errors name the key and allowed values.
PerceiverConfig parse_perceiver_config(const nlohmann::json& j, const std::string& path = "model");

}  // namespace perceiver::models
