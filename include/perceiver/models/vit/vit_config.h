// Configuration of the Vision Transformer (Dosovitskiy et al. 2020, arXiv 2010.11929), read from
// either source with validation:
//   - the "model" object of a run config ({"type": "vit", ...}): strict, unknown keys are errors;
//   - a Hugging Face hub config.json of a ViTConfig (model_type "vit", or the fixtures' wrapper
//     {"model_class": "ViTForImageClassification", "config": {...}}): the fields ViT reads are
//     type- and range-checked, generic PretrainedConfig keys are ignored (as HF does).
// Errors read "[config] model.hidden_size: expected ..." or "[vit_config] <file>: hidden_act: ...".
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace perceiver::models {

struct ViTConfig {
  std::vector<int64_t> image_size{28, 28};  // (H, W) the position table is trained for
  std::vector<int64_t> patch_size{4, 4};    // (ph, pw): patch embedding kernel = stride
  int64_t in_channels = 1;                  // HF num_channels
  int64_t hidden_size = 128;                // D
  int64_t num_hidden_layers = 4;
  int64_t num_attention_heads = 4;          // head_dim = D / heads
  int64_t intermediate_size = 256;          // MLP width
  float layer_norm_eps = 1e-12f;            // HF ViTConfig default
  bool qkv_bias = true;
  std::string pooling = "cls";  // "cls": classifier on the [class] token (HF); "mean": patch-token mean
  int64_t num_classes = 10;     // HF num_labels
  float dropout = 0.0f;            // HF hidden_dropout_prob (embeddings, attention output, MLP output)
  float attention_dropout = 0.0f;  // HF attention_probs_dropout_prob; only 0 can be trained
  // Initialisation from scratch: "normal" (HF: every weight, cls_token and position table
  // N(0, init_std) truncated, biases 0) or "lecun" (Linear/conv std 1/sqrt(fan_in)).
  std::string init = "normal";
  float init_std = 0.02f;  // HF initializer_range
  std::vector<std::string> id2label;  // label names by class id (HF configs); may be empty

  int64_t grid_h() const { return image_size[0] / patch_size[0]; }
  int64_t grid_w() const { return image_size[1] / patch_size[1]; }
  int64_t num_patches() const { return grid_h() * grid_w(); }  // N; the sequence is N + 1
  int64_t head_dim() const { return hidden_size / num_attention_heads; }

  nlohmann::json to_json() const;      // run-config "model" object, with "type": "vit"
  nlohmann::json to_hub_json() const;  // HF config.json (ViTForImageClassification)
};

// Reads and validates a run-config "model" object; errors name the key ("[config] model.x: ...").
ViTConfig parse_vit_config(const nlohmann::json& j, const std::string& path = "model");

// Reads and validates an HF ViTConfig (hub config.json or fixture wrapper); `what` names the
// source in errors. num_classes = len(id2label) when given, else "num_labels", else 2 (HF).
ViTConfig parse_hf_vit_config(const nlohmann::json& j, const std::string& what);
ViTConfig load_hf_vit_config(const std::string& path);

// True when a hub config.json describes a ViT (model_type "vit" or a ViT architecture), so a
// model-folder loader can dispatch between families.
bool is_hf_vit_config(const nlohmann::json& j);

}  // namespace perceiver::models
