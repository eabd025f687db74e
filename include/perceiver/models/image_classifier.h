// The interface the trainer, `perceiver eval` and `perceiver predict` use for any image
// classifier (the Perceiver of 2103.03206, ViT, ...), and the factory that builds one from the
// "model" object of a run config by its "type".
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "perceiver/core/random.h"
#include "perceiver/models/model.h"
#include "perceiver/nn/module.h"

namespace perceiver::models {

// An image classifier of run configs (the trainer's Fashion-MNIST path) and a Model: its named
// forward takes the images under input_name() and returns "logits"; the loss is the
// cross-entropy against "labels" (int32 class ids).
class ImageClassifier : public Model {
 public:
  using Model::forward;
  // images (B, H, W) for one channel or (B, H, W, C) -> logits (B, K); rng drives dropout in
  // training mode (may be null when the model has no dropout or in eval mode).
  virtual Tensor forward(const Tensor& images, Rng* rng = nullptr) const = 0;
  Tensor loss(const TensorMap& outputs, const TensorMap& inputs) const override;
  std::vector<std::string> target_names() const override { return {"labels"}; }
  virtual std::vector<int64_t> image_size() const = 0;  // (H, W)
  virtual int64_t in_channels() const = 0;
  virtual int64_t num_classes() const = 0;
  virtual nlohmann::json config_json() const = 0;  // normalised config (all keys), with "type"
  // Bytes of activations one training sample keeps for backward (fp32), with or without
  // activation checkpointing: the trainer's memory estimate (tests hold it to the measured peak).
  virtual int64_t training_activation_bytes(bool checkpointing) const = 0;
};

// A run's images, (B, H, W) for one channel or (B, H, W, C) channels-last, as NCHW pixel values
// (B, C, H, W) for models that take that layout (ViT, BoTNet); errors start with "[who]".
Tensor images_to_nchw(const Tensor& images, int64_t channels, const std::string& who);

// Model types a run config may name.
std::vector<std::string> image_classifier_types();

// Validates a "model" object (dispatching on "type", default "perceiver") and returns it in
// normalised form (every key, defaults filled in). Errors name the key ("[config] model.x: ...").
nlohmann::json normalize_image_classifier_config(const nlohmann::json& j, const std::string& path = "model");

// Builds the model a normalised config describes, initialised from `seed`.
std::unique_ptr<ImageClassifier> make_image_classifier(const nlohmann::json& normalized, uint64_t seed);

}  // namespace perceiver::models
