// The Perceiver classifier (Jaegle et al. 2021, arXiv 2103.03206) over grid inputs:
//   inputs  = [pixels, Fourier features]                       (B, M, C)
//   z       = latents                                          (B, N, D)
//   repeat num_cross_attends times:
//     z = cross_attend(z, inputs); repeat num_blocks x: z = self_attends(z)
//   logits  = head(z)                                          (B, K)
// Parameter names follow HF PerceiverForImageClassificationFourier ("perceiver.embeddings.latents",
// "perceiver.encoder.cross_attention...", "perceiver.encoder.self_attends.{i}..."); the paper's
// extra weight sets (unshared cross-attends) are "perceiver.encoder.cross_attention_{j}" and
// "perceiver.encoder.self_attends_{j}.{i}".
#pragma once

#include <memory>
#include <vector>

#include "perceiver/models/image_classifier.h"
#include "perceiver/models/perceiver_config.h"
#include "perceiver/nn/perceiver_encoder.h"
#include "perceiver/nn/perceiver_layer.h"

namespace perceiver::models {

class Perceiver : public ImageClassifier {
 public:
  Perceiver(const PerceiverConfig& config, uint64_t init_seed);

  // images (B, H, W) for one channel or (B, H, W, C); rng drives dropout in training mode
  // and drop path (may be null when dropout and drop_path are 0, or in eval mode). Returns logits (B, K).
  Tensor forward(const Tensor& images, Rng* rng = nullptr) const override;
  // Model: "inputs" (images as above) -> "logits".
  TensorMap forward(const TensorMap& inputs, TensorMap* trace = nullptr, Rng* rng = nullptr) const override;
  Tensor cross_attention_probs(const TensorMap& inputs) const override;
  std::string architecture() const override { return kArchitecture; }
  // The run-config "model" object with "architectures": ["PerceiverClassifier"].
  nlohmann::json hub_config() const override;
  static constexpr const char* kArchitecture = "PerceiverClassifier";
  std::vector<int64_t> image_size() const override { return config_.image_size; }
  int64_t in_channels() const override { return config_.in_channels; }
  int64_t num_classes() const override { return config_.num_classes; }
  nlohmann::json config_json() const override { return config_.to_json(); }
  int64_t training_activation_bytes(bool checkpointing) const override;

  const PerceiverConfig& config() const { return config_; }

 private:
  // images -> the encoder's inputs: rows [pixels or patches (projected, normalised), position
  // features] (B, M, C), as each example's own channels `own` (B, M, C - F) and the grid's
  // Fourier features `shared` (M, F), which every example shares (undefined when the positions
  // are each element's own coordinates: then `own` holds all C channels)
  struct EncoderInputs {
    Tensor own, shared;
  };
  EncoderInputs encoder_input(const Tensor& images, Rng* rng) const;
  PerceiverConfig config_;
  Tensor positions_;  // (M, F) Fourier features, a constant
  Tensor latents_;    // (N, D)
  std::shared_ptr<nn::PerceiverEncoder> encoder_;
  // head
  std::shared_ptr<nn::Linear> input_projection_;  // config.input_projection > 0, trainable
  Tensor projection_weight_, projection_bias_;    // config.input_projection > 0, fixed (buffers)
  std::shared_ptr<nn::LayerNorm> head_norm_;
  Tensor query_;  // (1, D) for head == "query"
  std::shared_ptr<nn::PerceiverLayer> decoder_;
  std::shared_ptr<nn::Linear> final_layer_;
};

}  // namespace perceiver::models
