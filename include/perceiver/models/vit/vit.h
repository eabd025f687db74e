// The Vision Transformer classifier (Dosovitskiy et al. 2020, arXiv 2010.11929), Hugging Face
// ViTForImageClassification compatible:
//   patches = conv(pixels, kernel = stride = patch).flatten(2).transpose(1, 2)   (B, N, D)
//   h       = [cls_token; patches] + position_embeddings                        (B, 1 + N, D)
//   h       = num_hidden_layers x ViTLayer(h)   (pre-LN attention + GELU MLP)
//   logits  = classifier(layernorm(h)[:, 0])   ("mean" pooling: mean over the patch tokens)
// Parameters carry the HF state_dict names (vit.embeddings.cls_token, vit.embeddings.
// position_embeddings, vit.embeddings.patch_embeddings.projection.{weight,bias},
// vit.encoder.layer.{i}.*, vit.layernorm.*, classifier.*), so a hub model.safetensors loads with
// Module::load_state_dict. An input whose patch grid differs from the configured one gets the
// position table resampled bicubically to that grid (HF interpolate_pos_encoding), including
// non-square grids.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "perceiver/models/image_classifier.h"
#include "perceiver/models/vit/vit_config.h"
#include "perceiver/models/vit/vit_layer.h"

namespace perceiver::models {

// Intermediate tensors of one forward pass, named as the HF fixture's outputs.safetensors.
struct ViTTrace {
  Tensor patch_embeddings;                       // (B, N, D)
  Tensor embeddings;                             // (B, T, D) after CLS prepend + positions
  std::vector<Tensor> attention_block_outputs;   // per layer (B, T, D), before the residual
  std::vector<Tensor> hidden_states;             // per layer (B, T, D) (HF hidden_states[1..L])
  Tensor final_layernorm_output;                 // (B, T, D) HF last_hidden_state
  Tensor logits;                                 // (B, K)
  // By fixture name; the per-layer lists are stacked to (L, B, T, D)
  // ("attention_block_output_each_layer", "hidden_states_after_each_layer"), when L > 0.
  std::map<std::string, Tensor> to_map() const;
};

class ViT : public ImageClassifier {
 public:
  ViT(const ViTConfig& config, uint64_t init_seed);

  // ImageClassifier: images (B, H, W) for one channel or (B, H, W, C) channels-last.
  Tensor forward(const Tensor& images, Rng* rng = nullptr) const override;
  // Model: "pixel_values" (B, C, H, W) -> "logits" (forward_pixels); trace receives ViTTrace::to_map().
  TensorMap forward(const TensorMap& inputs, TensorMap* trace = nullptr, Rng* rng = nullptr) const override;
  std::string architecture() const override { return "ViTForImageClassification"; }
  nlohmann::json hub_config() const override { return config_.to_hub_json(); }
  std::vector<int64_t> image_size() const override { return config_.image_size; }
  int64_t in_channels() const override { return config_.in_channels; }
  int64_t num_classes() const override { return config_.num_classes; }
  nlohmann::json config_json() const override { return config_.to_json(); }
  int64_t training_activation_bytes(bool checkpointing) const override;

  // HF ViTForImageClassification(pixel_values, interpolate_pos_encoding=True): pixel_values
  // (B, C, H, W) NCHW, H >= patch height, W >= patch width (trailing pixels that do not fill a
  // patch are dropped, as the strided conv does) -> logits (B, K). Fills `trace` when given.
  Tensor forward_pixels(const Tensor& pixel_values, ViTTrace* trace = nullptr, Rng* rng = nullptr) const;

  // The position table for a grid_h x grid_w patch grid, (1 + grid_h * grid_w, D): the learned
  // table at the configured grid, else its patch rows resampled bicubically (the CLS row kept).
  Tensor position_embeddings(int64_t grid_h, int64_t grid_w) const;

  const ViTConfig& config() const { return config_; }

 private:
  ViTConfig config_;
  Tensor cls_token_;        // (1, 1, D)
  Tensor position_table_;   // (1, 1 + N, D)
  Tensor projection_w_;     // (D, C, ph, pw)
  Tensor projection_b_;     // (D)
  std::vector<std::shared_ptr<ViTLayer>> layers_;
  std::shared_ptr<nn::LayerNorm> layernorm_;
  std::shared_ptr<nn::Linear> classifier_;
};


}  // namespace perceiver::models
