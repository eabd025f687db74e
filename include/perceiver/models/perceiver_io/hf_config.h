// The Hugging Face PerceiverConfig (configuration_perceiver.py) and the task class it is used
// with, read from a hub config.json ({"architectures": ["PerceiverForOpticalFlow"], ...}) or from
// the fixtures' wrapper ({"model_class": "...", "config": {...}}). Every field the six Perceiver IO
// task classes read is type- and range-checked; generic PretrainedConfig keys are ignored, as HF
// does. Errors read "[hf_config] <file>: num_latents: expected an integer in [1, ...], got -3".
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace perceiver::models::perceiver_io {

// The HF task classes: the six with a DeepMind checkpoint (spec section 9) and the text
// classifier HF defines without one (trained here from scratch or from a masked-LM run).
enum class PerceiverTask {
  kMaskedLM,                       // PerceiverForMaskedLM (language-perceiver)
  kImageClassificationLearned,     // PerceiverForImageClassificationLearned
  kImageClassificationFourier,     // PerceiverForImageClassificationFourier
  kImageClassificationConv,        // PerceiverForImageClassificationConvProcessing
  kOpticalFlow,                    // PerceiverForOpticalFlow
  kMultimodalAutoencoding,         // PerceiverForMultimodalAutoencoding
  kSequenceClassification,         // PerceiverForSequenceClassification (bytes -> num_labels)
  kTokenClassification,            // PerceiverForTokenClassification (ours: each byte -> num_labels)
};

// "PerceiverForOpticalFlow" -> kOpticalFlow; throws listing the supported class names.
PerceiverTask task_from_architecture(const std::string& architecture);
const char* architecture_name(PerceiverTask task);
std::vector<std::string> supported_architectures();

// PerceiverConfig fields with the HF defaults. 0 stands for an unset (null) qk/v width.
struct HfPerceiverConfig {
  std::string architecture = "PerceiverForMaskedLM";
  PerceiverTask task = PerceiverTask::kMaskedLM;

  int64_t num_latents = 256;
  int64_t d_latents = 1280;
  int64_t d_model = 768;  // informative only: the encoder width comes from the preprocessor
  int64_t num_blocks = 1;
  int64_t num_self_attends_per_block = 26;
  int64_t num_self_attention_heads = 8;
  int64_t num_cross_attention_heads = 8;
  int64_t qk_channels = 0;
  int64_t v_channels = 0;
  std::string cross_attention_shape_for_attention = "kv";
  int64_t self_attention_widening_factor = 1;
  int64_t cross_attention_widening_factor = 1;
  std::string hidden_act = "gelu";
  double attention_probs_dropout_prob = 0.1;
  bool use_query_residual = true;
  // Task-specific fields.
  int64_t vocab_size = 262;
  int64_t max_position_embeddings = 2048;
  int64_t image_size = 56;
  std::vector<int64_t> train_size{368, 496};
  int64_t num_frames = 16;
  int64_t audio_samples_per_frame = 1920;
  int64_t samples_per_patch = 16;
  std::vector<int64_t> output_shape{1, 16, 224, 224};
  int64_t output_num_channels = 512;
  int64_t label_trainable_num_channels = 1024;  // "_label_trainable_num_channels"
  // PretrainedConfig: num_labels = len(id2label) when id2label is given, else "num_labels" (2).
  int64_t num_labels = 2;
  std::vector<std::string> id2label;  // label names by class id; empty when not given
};

// Parses either layout. `what` names the source in error messages (usually the file path).
HfPerceiverConfig parse_hf_config(const nlohmann::json& j, const std::string& what);
HfPerceiverConfig load_hf_config(const std::string& path);

// The hub config.json form ({"architectures": [...], "model_type": "perceiver", fields...}).
nlohmann::json to_hub_json(const HfPerceiverConfig& c);

}  // namespace perceiver::models::perceiver_io
