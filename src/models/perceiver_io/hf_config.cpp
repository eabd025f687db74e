// HF PerceiverConfig parsing and validation (configuration_perceiver.py defaults).
#include "perceiver/models/perceiver_io/hf_config.h"

#include <map>

#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"

namespace perceiver::models::perceiver_io {

namespace {

const std::vector<std::pair<std::string, PerceiverTask>>& task_table() {
  static const std::vector<std::pair<std::string, PerceiverTask>> t = {
      {"PerceiverForMaskedLM", PerceiverTask::kMaskedLM},
      {"PerceiverForImageClassificationLearned", PerceiverTask::kImageClassificationLearned},
      {"PerceiverForImageClassificationFourier", PerceiverTask::kImageClassificationFourier},
      {"PerceiverForImageClassificationConvProcessing", PerceiverTask::kImageClassificationConv},
      {"PerceiverForOpticalFlow", PerceiverTask::kOpticalFlow},
      {"PerceiverForMultimodalAutoencoding", PerceiverTask::kMultimodalAutoencoding},
      {"PerceiverForSequenceClassification", PerceiverTask::kSequenceClassification},
      {"PerceiverForTokenClassification", PerceiverTask::kTokenClassification},
  };
  return t;
}

constexpr int64_t kMaxWidth = 1 << 20;   // channels, latents, labels
constexpr int64_t kMaxCount = 1 << 30;   // positions, samples

}  // namespace

PerceiverTask task_from_architecture(const std::string& architecture) {
  for (const auto& [name, task] : task_table())
    if (name == architecture) return task;
  std::string list;
  for (const auto& [name, task] : task_table()) list += (list.empty() ? "" : ", ") + name;
  throw_error("[hf_config] architecture: expected one of ", list, ", got \"", architecture, "\"");
}

const char* architecture_name(PerceiverTask task) {
  for (const auto& [name, t] : task_table())
    if (t == task) return name.c_str();
  return "?";
}

std::vector<std::string> supported_architectures() {
  std::vector<std::string> out;
  for (const auto& [name, task] : task_table()) out.push_back(name);
  return out;
}

HfPerceiverConfig parse_hf_config(const nlohmann::json& root, const std::string& what) {
  JsonObject top(root, JsonObject::Mode::kLenient, "hf_config", what);
  HfPerceiverConfig c;
  const nlohmann::json* body = &root;
  if (top.has("model_class")) {
    // Fixture wrapper: {"model_class": "PerceiverFor...", "config": {PerceiverConfig fields}}.
    c.architecture = top.get_string("model_class", "");
    const nlohmann::json* inner = top.find("config");
    if (!inner || !inner->is_object())
      throw_error("[hf_config] ", what, ": a file with \"model_class\" must hold the PerceiverConfig under "
                  "\"config\" (an object)");
    body = inner;
  } else {
    // Hub config.json: the task class is architectures[0].
    const nlohmann::json* a = top.find("architectures");
    if (!a)
      throw_error("[hf_config] ", what, ": architectures: expected a list naming the HF class (e.g. "
                  "[\"PerceiverForOpticalFlow\"]), got no such key");
    if (!a->is_array() || a->size() != 1 || !(*a)[0].is_string())
      top.fail("architectures", "a list with one class name", *a);
    c.architecture = (*a)[0].get<std::string>();
    top.get_string("model_type", "perceiver", {"perceiver"});
  }
  try {
    c.task = task_from_architecture(c.architecture);
  } catch (const Error& e) {
    throw_error("[hf_config] ", what, ": ", std::string(e.what()).substr(12));
  }

  JsonObject f(*body, JsonObject::Mode::kLenient, "hf_config", what);
  c.num_latents = f.get_int("num_latents", c.num_latents, 1, kMaxWidth);
  c.d_latents = f.get_int("d_latents", c.d_latents, 1, kMaxWidth);
  c.d_model = f.get_int("d_model", c.d_model, 1, kMaxWidth);
  c.num_blocks = f.get_int("num_blocks", c.num_blocks, 0, 4096);
  c.num_self_attends_per_block = f.get_int("num_self_attends_per_block", c.num_self_attends_per_block, 0, 4096);
  c.num_self_attention_heads = f.get_int("num_self_attention_heads", c.num_self_attention_heads, 1, 4096);
  c.num_cross_attention_heads = f.get_int("num_cross_attention_heads", c.num_cross_attention_heads, 1, 4096);
  c.qk_channels = f.get_int("qk_channels", c.qk_channels, 1, kMaxWidth);
  c.v_channels = f.get_int("v_channels", c.v_channels, 1, kMaxWidth);
  c.cross_attention_shape_for_attention =
      f.get_string("cross_attention_shape_for_attention", c.cross_attention_shape_for_attention, {"kv", "q"});
  c.self_attention_widening_factor =
      f.get_int("self_attention_widening_factor", c.self_attention_widening_factor, 1, 1024);
  c.cross_attention_widening_factor =
      f.get_int("cross_attention_widening_factor", c.cross_attention_widening_factor, 1, 1024);
  // PerceiverMLP uses ACT2FN[hidden_act]; every checkpoint uses "gelu" (exact erf form).
  if (const nlohmann::json* v = f.find("hidden_act"); v && !(v->is_string() && *v == "gelu"))
    f.fail("hidden_act", "\"gelu\" (the only activation implemented: exact erf GELU)", *v);
  c.attention_probs_dropout_prob = f.get_number("attention_probs_dropout_prob", c.attention_probs_dropout_prob, 0.0, 1.0);
  c.use_query_residual = f.get_bool("use_query_residual", c.use_query_residual);
  f.get_number("layer_norm_eps", 0.0, 0.0, 1.0);     // never read by the model (LayerNorm eps 1e-5)
  f.get_number("initializer_range", 0.0, 0.0, 1e6);  // only for training from scratch
  c.vocab_size = f.get_int("vocab_size", c.vocab_size, 1, kMaxCount);
  c.max_position_embeddings = f.get_int("max_position_embeddings", c.max_position_embeddings, 1, kMaxCount);
  c.image_size = f.get_int("image_size", c.image_size, 1, kMaxCount);
  c.train_size = f.get_int_list("train_size", c.train_size, 1, kMaxCount, 2, 2);
  c.num_frames = f.get_int("num_frames", c.num_frames, 1, kMaxCount);
  c.audio_samples_per_frame = f.get_int("audio_samples_per_frame", c.audio_samples_per_frame, 1, kMaxCount);
  c.samples_per_patch = f.get_int("samples_per_patch", c.samples_per_patch, 1, kMaxCount);
  c.output_shape = f.get_int_list("output_shape", c.output_shape, 1, kMaxCount, 4, 4);
  c.output_num_channels = f.get_int("output_num_channels", c.output_num_channels, 1, kMaxWidth);
  c.label_trainable_num_channels =
      f.get_int("_label_trainable_num_channels", c.label_trainable_num_channels, 1, kMaxWidth);
  c.num_labels = f.get_int("num_labels", c.num_labels, 1, kMaxWidth);
  c.id2label = f.get_labels("id2label", c.id2label);
  if (!c.id2label.empty()) {
    if (static_cast<int64_t>(c.id2label.size()) > kMaxWidth)
      throw_error(f.name("id2label"), ": expected at most ", kMaxWidth, " labels, got ", c.id2label.size());
    c.num_labels = static_cast<int64_t>(c.id2label.size());  // PretrainedConfig: id2label wins over num_labels
  }

  // Checks HF makes when building the model (PerceiverEncoder.__init__).
  check(c.d_latents % c.num_self_attention_heads == 0, "[hf_config] ", what,
        ": d_latents (", c.d_latents, ") must be divisible by num_self_attention_heads (",
        c.num_self_attention_heads, ")");
  check(c.d_latents % c.num_cross_attention_heads == 0, "[hf_config] ", what,
        ": d_latents (", c.d_latents, ") must be divisible by num_cross_attention_heads (",
        c.num_cross_attention_heads, ")");
  return c;
}

HfPerceiverConfig load_hf_config(const std::string& path) {
  return parse_hf_config(read_json_file(path, "hf_config"), path);
}

nlohmann::json to_hub_json(const HfPerceiverConfig& c) {
  nlohmann::json j;
  j["architectures"] = {c.architecture};
  j["model_type"] = "perceiver";
  j["num_latents"] = c.num_latents;
  j["d_latents"] = c.d_latents;
  j["d_model"] = c.d_model;
  j["num_blocks"] = c.num_blocks;
  j["num_self_attends_per_block"] = c.num_self_attends_per_block;
  j["num_self_attention_heads"] = c.num_self_attention_heads;
  j["num_cross_attention_heads"] = c.num_cross_attention_heads;
  j["qk_channels"] = c.qk_channels > 0 ? nlohmann::json(c.qk_channels) : nlohmann::json();
  j["v_channels"] = c.v_channels > 0 ? nlohmann::json(c.v_channels) : nlohmann::json();
  j["cross_attention_shape_for_attention"] = c.cross_attention_shape_for_attention;
  j["self_attention_widening_factor"] = c.self_attention_widening_factor;
  j["cross_attention_widening_factor"] = c.cross_attention_widening_factor;
  j["hidden_act"] = c.hidden_act;
  j["attention_probs_dropout_prob"] = c.attention_probs_dropout_prob;
  j["use_query_residual"] = c.use_query_residual;
  j["vocab_size"] = c.vocab_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["image_size"] = c.image_size;
  j["train_size"] = c.train_size;
  j["num_frames"] = c.num_frames;
  j["audio_samples_per_frame"] = c.audio_samples_per_frame;
  j["samples_per_patch"] = c.samples_per_patch;
  j["output_shape"] = c.output_shape;
  j["output_num_channels"] = c.output_num_channels;
  j["_label_trainable_num_channels"] = c.label_trainable_num_channels;
  if (c.id2label.empty()) {
    j["num_labels"] = c.num_labels;
  } else {
    nlohmann::json m = nlohmann::json::object();
    for (size_t i = 0; i < c.id2label.size(); ++i) m[std::to_string(i)] = c.id2label[i];
    j["id2label"] = m;
  }
  return j;
}

}  // namespace perceiver::models::perceiver_io
