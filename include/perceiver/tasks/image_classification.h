// Image classification with any image classification model folder, for every front end (the
// `classify` command, the Python module, the HTTP server). The folder's architecture picks the
// image processor and the model: PerceiverForImageClassification{Learned,Fourier,ConvProcessing}
// use the Perceiver processor (centre crop, Pillow BICUBIC to 224, ImageNet normalisation);
// ViTForImageClassification the ViT processor (BILINEAR resize to the config image_size, mean =
// std = 0.5; the model resamples its position table for any other size). The defaults are
// overridden by DIR/preprocessor_config.json, then by the options. A timm BoTNet folder
// (botnet26t_256) uses timm's eval transform as its pretrained_cfg describes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "perceiver/data/image_processor.h"
#include "perceiver/models/model.h"

namespace perceiver::tasks {

struct ClassifierOptions {
  int64_t size = 0, crop_size = 0;  // 0: from preprocessor_config.json or the hub default
  std::string crop_offset;          // "", "ceil" or "floor"
  std::string command = "classify";  // names the caller in error messages
};

struct LabelScore {
  int64_t index = 0;
  std::string label;
  float probability = 0;
};

class ImageClassifier {
 public:
  // Reads DIR (config.json parsed once); refuses folders that are not image classifiers.
  static ImageClassifier load(const std::string& dir, const ClassifierOptions& options = {});

  models::Model& model() const { return *model_; }
  std::shared_ptr<models::Model> shared_model() const { return model_; }
  const std::vector<std::string>& labels() const { return labels_; }
  const data::ImageProcessorConfig& processor() const { return processor_; }
  const std::string& architecture() const { return architecture_; }
  const std::string& input_name() const { return input_; }  // "inputs" (HF Perceiver) or "pixel_values"

  // (B, K) logits of images preprocessed together (every image resized to the processor size).
  Tensor logits(const std::vector<data::RgbImage>& images) const;
  // The two halves of logits(): the processor's (B, C, H, W) pixel values, and the model on them
  // (the server batches the pixels of several requests).
  Tensor pixels(const std::vector<data::RgbImage>& images) const;
  Tensor logits_of_pixels(const Tensor& pixels) const;
  // The k most likely labels of one row of logits, with softmax probabilities.
  std::vector<LabelScore> top_k(const Tensor& logits, int64_t row, int64_t k) const;

 private:
  std::shared_ptr<models::Model> model_;
  std::string input_ = "pixel_values", architecture_, dir_;
  std::vector<std::string> labels_;
  data::ImageProcessorConfig processor_;
};

// The architectures ImageClassifier takes ("PerceiverForImageClassificationLearned", ...).
std::vector<std::string> image_classifier_architectures();

}  // namespace perceiver::tasks
