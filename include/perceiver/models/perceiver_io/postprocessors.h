// Output postprocessors of HF modeling_perceiver (spec 7, multimodal model only): the decoder
// output is split by output modality sizes (alphabetical order) and each part goes through its
// own "classifier" Linear. Names below "perceiver.output_postprocessor.".
#pragma once

#include <map>
#include <memory>
#include <string>

#include "perceiver/models/perceiver_io/preprocessors.h"

namespace perceiver::models::perceiver_io {

class Postprocessor : public nn::Module {
 public:
  virtual Tensor forward(const Tensor& x) const = 0;  // (B, n, Cin) -> logits
};

// PerceiverClassificationPostprocessor: classifier(x)[:, 0, :] -> (B, K).
class ClassificationPostprocessor : public Postprocessor {
 public:
  ClassificationPostprocessor(int64_t in_channels, int64_t num_labels, Rng& rng);
  Tensor forward(const Tensor& x) const override;

 private:
  std::shared_ptr<nn::Linear> classifier_;
};

// PerceiverAudioPostprocessor (patches): classifier(x) reshaped to (B, n * samples_per_patch).
class AudioPostprocessor : public Postprocessor {
 public:
  AudioPostprocessor(int64_t in_channels, int64_t samples_per_patch, Rng& rng);
  Tensor forward(const Tensor& x) const override;

 private:
  std::shared_ptr<nn::Linear> classifier_;
};

// PerceiverProjectionPostprocessor: classifier(x) -> (B, n, out).
class ProjectionPostprocessor : public Postprocessor {
 public:
  ProjectionPostprocessor(int64_t in_channels, int64_t out_channels, Rng& rng);
  Tensor forward(const Tensor& x) const override;

 private:
  std::shared_ptr<nn::Linear> classifier_;
};

// PerceiverMultimodalPostprocessor: "modalities.<m>"; returns "logits.<m>" per decoded modality.
class MultimodalPostprocessor : public nn::Module {
 public:
  explicit MultimodalPostprocessor(std::map<std::string, std::shared_ptr<Postprocessor>> modalities);
  // x (B, O, C) holding sizes[i].second rows of modality sizes[i].first, in that order.
  TensorMap forward(const Tensor& x, const ModalitySizes& sizes) const;

 private:
  std::map<std::string, std::shared_ptr<Postprocessor>> modalities_;
};

}  // namespace perceiver::models::perceiver_io
