// Input preprocessors of HF modeling_perceiver (spec 5.5-5.9): each turns raw model inputs into
// the encoder's key/value array (B, M, C) = [features, position encoding (, padding)].
// Parameter names are the HF ones below "perceiver.input_preprocessor.".
#pragma once

#include <map>
#include <mutex>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "perceiver/core/random.h"
#include "perceiver/models/perceiver_io/position_encoding.h"
#include "perceiver/models/model.h"
#include "perceiver/nn/layers.h"

namespace perceiver::models::perceiver_io {

// Named tensors: model inputs ("inputs", "attention_mask", "inputs.image", ...) and outputs.
using TensorMap = models::TensorMap;
// Tokens per modality in the encoder input, in HF's (alphabetical) order.
using ModalitySizes = std::vector<std::pair<std::string, int64_t>>;

using models::require_input;  // the named input, or an Error listing the given names (model.h)

struct Preprocessed {
  Tensor inputs;                // (B, M, C) encoder input, or its first C - Cs channels when shared is set
  ModalitySizes modality_sizes; // multimodal only
  Tensor shared;                // (M, Cs) or undefined: the last Cs channels of every example's rows,
                                // the same for all (unprojected Fourier features, concatenated)
  Tensor full_inputs() const;   // (B, M, C) the rows [inputs, shared]
};

class Preprocessor : public nn::Module {
 public:
  // Width C of the encoder input (HF `num_channels`).
  virtual int64_t num_channels() const = 0;
  virtual Preprocessed forward(const TensorMap& inputs, Rng* rng) const = 0;
};

// One-modality preprocessors read the input named "inputs" (or, inside the multimodal
// preprocessor, "inputs.<modality>").
class ModalityPreprocessor : public Preprocessor {
 public:
  Preprocessed forward(const TensorMap& inputs, Rng* rng) const override;
  // x -> (B, M, C)
  virtual Tensor process(const Tensor& x) const = 0;
  // x -> the same rows, with channels every example shares kept apart (Preprocessed::shared)
  // where the modality has them; forward() returns this
  virtual Preprocessed process_split(const Tensor& x) const { return {process(x), {}, Tensor()}; }
};

// PerceiverTextPreprocessor: E[ids] + P[0 .. L-1]; ids int (B, L) with L <= max positions.
class TextPreprocessor : public ModalityPreprocessor {
 public:
  TextPreprocessor(int64_t vocab_size, int64_t d_model, int64_t max_position_embeddings, Rng& rng);
  int64_t num_channels() const override { return embeddings_.dim(1); }
  Tensor process(const Tensor& ids) const override;
  const Tensor& embeddings() const { return embeddings_; }  // (V, C), tied to the MLM output

 private:
  Tensor embeddings_;           // "embeddings.weight" (V, C)
  Tensor position_embeddings_;  // "position_embeddings.weight" (P, C)
};

// HF Conv2DDownsample (one stage): zero pad k/2, 7x7 stride-2 conv without bias, BatchNorm2d
// (batch statistics and running-buffer updates in training mode), ReLU, 3x3 stride-2 max-pool.
class ConvDownsample : public nn::Module {
 public:
  ConvDownsample(int64_t in_channels, int64_t out_channels, bool use_batchnorm, Rng& rng);
  Tensor forward(const Tensor& x) const;  // (B, Cin, H, W) -> (B, Cout, H', W')
  // Buffers (registered, not parameters): batchnorm.running_mean, running_var, num_batches_tracked.

 private:
  Tensor conv_weight_;  // "conv.weight" (Cout, Cin, 7, 7)
  std::shared_ptr<nn::BatchNorm2d> batchnorm_;  // "batchnorm.*", or null without batch norm
};

struct ImagePreprocessorConfig {
  std::string prep_type = "conv";  // conv | conv1x1 | pixels | patches
  int64_t spatial_downsample = 4;
  int64_t temporal_downsample = 1;
  std::string position_encoding_type = "fourier";  // fourier | trainable
  int64_t in_channels = 3;
  int64_t out_channels = 64;
  bool conv_after_patching = false;
  int64_t conv_after_patching_in_channels = 54;
  bool conv2d_use_batchnorm = true;
  std::string concat_or_add_pos = "concat";  // concat | add
  int64_t project_pos_dim = -1;              // > 0: Linear(out_channels -> project_pos_dim)
  int64_t trainable_index_dim = 0;           // trainable table rows (prod of its index dims)
  int64_t trainable_channels = 128;
  FourierSpec fourier;
};

// PerceiverImagePreprocessor: images (B, C, H, W) or videos (B, T, C, H, W).
class ImagePreprocessor : public ModalityPreprocessor {
 public:
  ImagePreprocessor(const ImagePreprocessorConfig& config, Rng& rng);
  int64_t num_channels() const override;
  Tensor process(const Tensor& x) const override;
  Preprocessed process_split(const Tensor& x) const override;
  ConvDownsample* convnet() const { return convnet_.get(); }

 private:
  // Features (B, i_1, ..., i_k, C) with their index dims.
  Tensor features(const Tensor& x, std::vector<int64_t>& index_dims) const;
  Tensor position_encoding(const std::vector<int64_t>& index_dims, int64_t tokens, int64_t batch) const;
  Tensor fourier_grid(const std::vector<int64_t>& index_dims) const;  // (M, F), cached
  ImagePreprocessorConfig c_;
  std::shared_ptr<ConvDownsample> convnet_;
  Tensor conv1x1_weight_, conv1x1_bias_;       // "convnet_1x1.{weight,bias}" (Cout, Cin, 1, 1)
  std::shared_ptr<nn::Linear> conv_after_patches_;
  std::shared_ptr<TrainablePositionEncoding> trainable_;
  std::shared_ptr<nn::Linear> positions_projection_;
  mutable std::map<std::vector<int64_t>, Tensor> fourier_cache_;
  mutable std::shared_ptr<std::mutex> fourier_cache_mutex_ = std::make_shared<std::mutex>();  // batch slices
};

struct AudioPreprocessorConfig {
  int64_t samples_per_patch = 96;
  std::string concat_or_add_pos = "concat";
  int64_t out_channels = 64;
  int64_t project_pos_dim = -1;
  FourierSpec fourier;
};

// PerceiverAudioPreprocessor (patches): (B, S, ...) -> (B, S / spp, spp) + 1-D Fourier features.
class AudioPreprocessor : public ModalityPreprocessor {
 public:
  AudioPreprocessor(const AudioPreprocessorConfig& config, Rng& rng);
  int64_t num_channels() const override;
  Tensor process(const Tensor& x) const override;
  Preprocessed process_split(const Tensor& x) const override;

 private:
  AudioPreprocessorConfig c_;
  std::shared_ptr<nn::Linear> positions_projection_;
};

// PerceiverOneHotPreprocessor: (B, K) -> (B, 1, K).
class OneHotPreprocessor : public ModalityPreprocessor {
 public:
  explicit OneHotPreprocessor(int64_t num_labels) : num_labels_(num_labels) {}
  int64_t num_channels() const override { return num_labels_; }
  Tensor process(const Tensor& x) const override;

 private:
  int64_t num_labels_;
};

// PerceiverMultimodalPreprocessor: per modality (alphabetical) preprocess "inputs.<m>", pad to the
// common width with "padding.<m>", replace tokens by "mask.<m>" with probability p_m, then
// concatenate along the token axis.
class MultimodalPreprocessor : public Preprocessor {
 public:
  MultimodalPreprocessor(std::map<std::string, std::shared_ptr<ModalityPreprocessor>> modalities,
                         std::map<std::string, float> mask_probs, int64_t min_padding_size, Rng& rng);
  int64_t num_channels() const override;
  Preprocessed forward(const TensorMap& inputs, Rng* rng) const override;

 private:
  std::map<std::string, std::shared_ptr<ModalityPreprocessor>> modalities_;
  std::map<std::string, float> mask_probs_;
  int64_t min_padding_size_;
  std::map<std::string, Tensor> padding_, mask_;
};

}  // namespace perceiver::models::perceiver_io
