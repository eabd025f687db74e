// A Hugging Face Perceiver IO image classifier (PerceiverForImageClassificationLearned, ...Fourier,
// ...ConvProcessing) trained by run configs like our own classifiers:
//
//   "model": {"type": "perceiver_io", "hub_config": "config.json" or {...}, "in_channels": 1}
//
// The hub config (a file path, read relative to the working directory, or the object itself)
// describes the model; its weights start from a fresh initialisation (or from `train --init`).
// Grey examples (B, H, W) are repeated to the three channels the HF preprocessors take, colour
// examples (B, H, W, 3) are moved channel-first: inputs = (B, 3, H, W). The parameters keep the
// HF names and hub_config() is the HF config, so a run's export/ loads in `perceiver run` and in
// transformers' from_pretrained.
#pragma once

#include <memory>

#include "perceiver/models/image_classifier.h"
#include "perceiver/models/perceiver_io/perceiver_io.h"

namespace perceiver::models {

class PerceiverIOImageClassifier : public ImageClassifier {
 public:
  // normalized: the output of normalize_perceiver_io_classifier_config.
  PerceiverIOImageClassifier(const nlohmann::json& normalized, uint64_t seed);

  using ImageClassifier::forward;
  Tensor forward(const Tensor& images, Rng* rng = nullptr) const override;
  // Model: the HF inputs ("inputs" (B, 3, H, W)) -> "logits".
  TensorMap forward(const TensorMap& inputs, TensorMap* trace = nullptr, Rng* rng = nullptr) const override;
  std::string architecture() const override { return model_->architecture(); }
  nlohmann::json hub_config() const override { return model_->hub_config(); }
  Tensor cross_attention_probs(const TensorMap& inputs) const override { return model_->cross_attention_probs(inputs); }
  std::vector<int64_t> image_size() const override;
  int64_t in_channels() const override { return in_channels_; }
  int64_t num_classes() const override { return model_->config().num_labels; }
  nlohmann::json config_json() const override { return config_; }
  int64_t training_activation_bytes(bool checkpointing) const override;

 private:
  nlohmann::json config_;
  int64_t in_channels_ = 1;
  std::shared_ptr<perceiver_io::PerceiverIO> model_;
};

// Validates a run config's {"type": "perceiver_io", ...} model object (an image classifier, or
// the masked LM / sequence classifier that text runs train, train/task.h); returns it with the
// hub config read, parsed and written out in full (to_hub_json) and "in_channels" filled in.
nlohmann::json normalize_perceiver_io_classifier_config(const nlohmann::json& j, const std::string& path);

}  // namespace perceiver::models
