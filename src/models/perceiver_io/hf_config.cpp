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
  };
  return t;
}

std::string shown(const nlohmann::json& v) {
  std::string s = v.dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

// Typed field reader over one JSON object; null counts as absent (HF writes null for unset
// qk_channels / v_channels). Unknown keys are allowed: hub files carry PretrainedConfig keys.
class Fields {
 public:
  Fields(const nlohmann::json& j, std::string what) : j_(j), what_(std::move(what)) {}

  const nlohmann::json* find(const std::string& key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  [[noreturn]] void fail(const std::string& key, const std::string& expected,
                         const nlohmann::json& got) const {
    throw_error("[hf_config] ", what_, ": ", key, ": expected ", expected, ", got ", shown(got));
  }
  void integer(const std::string& key, int64_t& out, int64_t min, int64_t max) const {
    const nlohmann::json* v = find(key);
    if (!v) return;
    const std::string exp = "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
    if (!v->is_number_integer()) fail(key, exp, *v);
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(max)) fail(key, exp, *v);
    const int64_t x = v->get<int64_t>();
    if (x < min || x > max) fail(key, exp, *v);
    out = x;
  }
  void number(const std::string& key, double& out, double min, double max) const {
    const nlohmann::json* v = find(key);
    if (!v) return;
    const std::string exp = "a number in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
    if (!v->is_number() || !(v->get<double>() >= min && v->get<double>() <= max)) fail(key, exp, *v);
    out = v->get<double>();
  }
  void boolean(const std::string& key, bool& out) const {
    const nlohmann::json* v = find(key);
    if (!v) return;
    if (!v->is_boolean()) fail(key, "true or false", *v);
    out = v->get<bool>();
  }
  void string(const std::string& key, std::string& out, const std::vector<std::string>& allowed) const {
    const nlohmann::json* v = find(key);
    if (!v) return;
    std::string exp = "one of";
    for (size_t i = 0; i < allowed.size(); ++i) exp += (i ? ", \"" : " \"") + allowed[i] + "\"";
    if (!v->is_string()) fail(key, exp, *v);
    for (const auto& a : allowed)
      if (a == v->get<std::string>()) {
        out = a;
        return;
      }
    fail(key, exp, *v);
  }
  void int_list(const std::string& key, std::vector<int64_t>& out, size_t len, int64_t min,
                int64_t max) const {
    const nlohmann::json* v = find(key);
    if (!v) return;
    const std::string exp = "a list of " + std::to_string(len) + " integers in [" +
                            std::to_string(min) + ", " + std::to_string(max) + "]";
    if (!v->is_array() || v->size() != len) fail(key, exp, *v);
    std::vector<int64_t> r;
    for (const auto& e : *v) {
      if (!e.is_number_integer() || e.get<int64_t>() < min || e.get<int64_t>() > max) fail(key, exp, *v);
      r.push_back(e.get<int64_t>());
    }
    out = r;
  }
  const std::string& what() const { return what_; }

 private:
  const nlohmann::json& j_;
  std::string what_;
};

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
  check(root.is_object(), "[hf_config] ", what, ": expected a JSON object, got ", shown(root));
  HfPerceiverConfig c;
  const nlohmann::json* body = &root;
  if (root.contains("model_class")) {
    // Fixture wrapper: {"model_class": "PerceiverFor...", "config": {PerceiverConfig fields}}.
    const auto& mc = root.at("model_class");
    check(mc.is_string(), "[hf_config] ", what, ": model_class: expected a string, got ", shown(mc));
    check(root.contains("config") && root.at("config").is_object(), "[hf_config] ", what,
          ": a file with \"model_class\" must hold the PerceiverConfig under \"config\" (an object)");
    c.architecture = mc.get<std::string>();
    body = &root.at("config");
  } else {
    // Hub config.json: the task class is architectures[0].
    check(root.contains("architectures"), "[hf_config] ", what,
          ": architectures: expected a list naming the HF class (e.g. [\"PerceiverForOpticalFlow\"]), "
          "got no such key");
    const auto& a = root.at("architectures");
    check(a.is_array() && a.size() == 1 && a[0].is_string(), "[hf_config] ", what,
          ": architectures: expected a list with one class name, got ", shown(a));
    c.architecture = a[0].get<std::string>();
    if (root.contains("model_type") && !root.at("model_type").is_null())
      check(root.at("model_type") == "perceiver", "[hf_config] ", what,
            ": model_type: expected \"perceiver\", got ", shown(root.at("model_type")));
  }
  try {
    c.task = task_from_architecture(c.architecture);
  } catch (const Error& e) {
    throw_error("[hf_config] ", what, ": ", std::string(e.what()).substr(12));
  }

  Fields f(*body, what);
  f.integer("num_latents", c.num_latents, 1, kMaxWidth);
  f.integer("d_latents", c.d_latents, 1, kMaxWidth);
  f.integer("d_model", c.d_model, 1, kMaxWidth);
  f.integer("num_blocks", c.num_blocks, 0, 4096);
  f.integer("num_self_attends_per_block", c.num_self_attends_per_block, 0, 4096);
  f.integer("num_self_attention_heads", c.num_self_attention_heads, 1, 4096);
  f.integer("num_cross_attention_heads", c.num_cross_attention_heads, 1, 4096);
  f.integer("qk_channels", c.qk_channels, 1, kMaxWidth);
  f.integer("v_channels", c.v_channels, 1, kMaxWidth);
  f.string("cross_attention_shape_for_attention", c.cross_attention_shape_for_attention, {"kv", "q"});
  f.integer("self_attention_widening_factor", c.self_attention_widening_factor, 1, 1024);
  f.integer("cross_attention_widening_factor", c.cross_attention_widening_factor, 1, 1024);
  if (const nlohmann::json* v = f.find("hidden_act")) {
    // PerceiverMLP uses ACT2FN[hidden_act]; every checkpoint uses "gelu" (exact erf form).
    if (!v->is_string() || v->get<std::string>() != "gelu")
      f.fail("hidden_act", "\"gelu\" (the only activation implemented: exact erf GELU)", *v);
  }
  f.number("attention_probs_dropout_prob", c.attention_probs_dropout_prob, 0.0, 1.0);
  f.boolean("use_query_residual", c.use_query_residual);
  double unused = 0.0;
  f.number("layer_norm_eps", unused, 0.0, 1.0);     // never read by the model (LayerNorm eps 1e-5)
  f.number("initializer_range", unused, 0.0, 1e6);  // only for training from scratch
  f.integer("vocab_size", c.vocab_size, 1, kMaxCount);
  f.integer("max_position_embeddings", c.max_position_embeddings, 1, kMaxCount);
  f.integer("image_size", c.image_size, 1, kMaxCount);
  f.int_list("train_size", c.train_size, 2, 1, kMaxCount);
  f.integer("num_frames", c.num_frames, 1, kMaxCount);
  f.integer("audio_samples_per_frame", c.audio_samples_per_frame, 1, kMaxCount);
  f.integer("samples_per_patch", c.samples_per_patch, 1, kMaxCount);
  f.int_list("output_shape", c.output_shape, 4, 1, kMaxCount);
  f.integer("output_num_channels", c.output_num_channels, 1, kMaxWidth);
  f.integer("_label_trainable_num_channels", c.label_trainable_num_channels, 1, kMaxWidth);
  f.integer("num_labels", c.num_labels, 1, kMaxWidth);

  if (const nlohmann::json* v = f.find("id2label")) {
    // {"0": "tench, Tinca tinca", ...}: ids 0..n-1, each exactly once.
    if (!v->is_object() || v->empty()) f.fail("id2label", "an object {\"0\": name, ...}", *v);
    std::map<int64_t, std::string> by_id;
    for (auto it = v->begin(); it != v->end(); ++it) {
      int64_t id = -1;
      try {
        size_t pos = 0;
        id = std::stoll(it.key(), &pos);
        if (pos != it.key().size()) id = -1;
      } catch (const std::exception&) {
        id = -1;
      }
      if (id < 0 || !it.value().is_string())
        f.fail("id2label", "integer keys >= 0 mapped to label strings", nlohmann::json{{it.key(), it.value()}});
      by_id[id] = it.value().get<std::string>();
    }
    const int64_t n = static_cast<int64_t>(by_id.size());
    if (by_id.rbegin()->first != n - 1)
      f.fail("id2label", "the ids 0.." + std::to_string(n - 1) + " each once", *v);
    c.id2label.clear();
    for (const auto& [id, name] : by_id) c.id2label.push_back(name);
    c.num_labels = n;  // PretrainedConfig: id2label wins over num_labels
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
  nlohmann::json j;
  try {
    j = read_json_file(path);
  } catch (const Error& e) {
    throw_error("[hf_config] ", path, ": ", e.what());
  }
  return parse_hf_config(j, path);
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
