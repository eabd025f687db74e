// ViT configuration: run-config and HF config.json parsing with validation, and back to JSON.
#include "perceiver/models/vit/vit_config.h"

#include <map>

#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"

namespace perceiver::models {

namespace {

constexpr int64_t kMaxSize = 1 << 16;   // pixels per axis, channels, widths
constexpr int64_t kMaxLabels = 1 << 20;
const char* const kArchitecture = "ViTForImageClassification";

std::string shown(const nlohmann::json& v) {
  std::string s = v.dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

// Checks every field combination the model needs (HF ViTSelfAttention / ViTPatchEmbeddings);
// `prefix` starts each message ("[config] model." or "[vit_config] file: ").
void validate(const ViTConfig& c, const std::string& prefix) {
  check(c.hidden_size % c.num_attention_heads == 0, prefix, "hidden_size (", c.hidden_size,
        ") must be divisible by num_attention_heads (", c.num_attention_heads, ")");
  for (int a = 0; a < 2; ++a)
    check(c.patch_size[a] <= c.image_size[a], prefix, "patch_size ", c.patch_size[a], " exceeds image_size ",
          c.image_size[a], " along ", a == 0 ? "height" : "width", " (no patch would fit)");
}

// Run configs accept "image_size": 28 or [28, 28] (likewise patch_size).
std::vector<int64_t> int_or_pair(JsonObject& o, const nlohmann::json& j, const std::string& key,
                                 const std::vector<int64_t>& def, int64_t min, int64_t max) {
  if (j.is_object() && j.contains(key) && j.at(key).is_number()) {
    const int64_t v = o.get_int(key, def[0], min, max);
    return {v, v};
  }
  return o.get_int_list(key, def, min, max, 2, 2);
}

// Typed reads of an HF config body: absent or null keeps the default; unknown keys are allowed.
class HfFields {
 public:
  HfFields(const nlohmann::json& j, std::string what) : j_(j), what_(std::move(what)) {}

  const nlohmann::json* find(const std::string& key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  [[noreturn]] void fail(const std::string& key, const std::string& expected, const nlohmann::json& got) const {
    throw_error("[vit_config] ", what_, ": ", key, ": expected ", expected, ", got ", shown(got));
  }
  void integer(const std::string& key, int64_t& out, int64_t min, int64_t max) const {
    const nlohmann::json* v = find(key);
    if (!v) return;
    const std::string exp = "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
    if (!v->is_number_integer() || (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(max))) fail(key, exp, *v);
    if (v->get<int64_t>() < min || v->get<int64_t>() > max) fail(key, exp, *v);
    out = v->get<int64_t>();
  }
  // An integer (square) or a list of two (height, width), as HF's `image_size` / `patch_size`.
  void size_pair(const std::string& key, std::vector<int64_t>& out, int64_t min, int64_t max) const {
    const nlohmann::json* v = find(key);
    if (!v) return;
    const std::string exp = "an integer or a list of 2 integers in [" + std::to_string(min) + ", " +
                            std::to_string(max) + "]";
    std::vector<int64_t> r;
    if (v->is_number_integer()) r = {v->get<int64_t>(), v->get<int64_t>()};
    else if (v->is_array() && v->size() == 2 && (*v)[0].is_number_integer() && (*v)[1].is_number_integer())
      r = {(*v)[0].get<int64_t>(), (*v)[1].get<int64_t>()};
    else fail(key, exp, *v);
    for (int64_t x : r)
      if (x < min || x > max) fail(key, exp, *v);
    out = r;
  }
  void number(const std::string& key, float& out, double min, double max) const {
    const nlohmann::json* v = find(key);
    if (!v) return;
    if (!v->is_number() || !(v->get<double>() >= min && v->get<double>() <= max))
      fail(key, "a number in [" + std::to_string(min) + ", " + std::to_string(max) + "]", *v);
    out = static_cast<float>(v->get<double>());
  }
  void boolean(const std::string& key, bool& out) const {
    const nlohmann::json* v = find(key);
    if (!v) return;
    if (!v->is_boolean()) fail(key, "true or false", *v);
    out = v->get<bool>();
  }
  // {"0": "tench", ...}: ids 0..n-1, each exactly once -> names by id.
  void labels(const std::string& key, std::vector<std::string>& out) const {
    const nlohmann::json* v = find(key);
    if (!v) return;
    if (!v->is_object() || v->empty()) fail(key, "an object {\"0\": name, ...}", *v);
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
        fail(key, "integer keys >= 0 mapped to label strings", nlohmann::json{{it.key(), it.value()}});
      by_id[id] = it.value().get<std::string>();
    }
    const int64_t n = static_cast<int64_t>(by_id.size());
    if (by_id.rbegin()->first != n - 1) fail(key, "the ids 0.." + std::to_string(n - 1) + " each once", *v);
    out.clear();
    for (const auto& entry : by_id) out.push_back(entry.second);
  }

 private:
  const nlohmann::json& j_;
  std::string what_;
};

// The config body and class name of either HF layout; checks model_type and the class.
const nlohmann::json& hf_body(const nlohmann::json& root, const std::string& what) {
  check(root.is_object(), "[vit_config] ", what, ": expected a JSON object, got ", shown(root));
  const nlohmann::json* body = &root;
  std::string arch;
  if (root.contains("model_class")) {
    // Fixture wrapper: {"model_class": "ViTForImageClassification", "config": {ViTConfig fields}}.
    const auto& mc = root.at("model_class");
    check(mc.is_string(), "[vit_config] ", what, ": model_class: expected a string, got ", shown(mc));
    check(root.contains("config") && root.at("config").is_object(), "[vit_config] ", what,
          ": a file with \"model_class\" must hold the ViTConfig under \"config\" (an object)");
    arch = mc.get<std::string>();
    body = &root.at("config");
  }
  if (body->contains("architectures") && !body->at("architectures").is_null()) {
    const auto& a = body->at("architectures");
    check(a.is_array() && a.size() == 1 && a[0].is_string(), "[vit_config] ", what,
          ": architectures: expected a list with one class name, got ", shown(a));
    check(arch.empty() || arch == a[0].get<std::string>(), "[vit_config] ", what, ": model_class \"", arch,
          "\" differs from architectures ", shown(a));
    arch = a[0].get<std::string>();
  }
  check(arch.empty() || arch == kArchitecture, "[vit_config] ", what, ": architectures: expected [\"",
        kArchitecture, "\"] (the class implemented), got \"", arch, "\"");
  const nlohmann::json* mt = body->contains("model_type") ? &body->at("model_type") : nullptr;
  check(mt && mt->is_string() && mt->get<std::string>() == "vit", "[vit_config] ", what,
        ": model_type: expected \"vit\", got ", mt ? shown(*mt) : std::string("no such key"));
  return *body;
}

}  // namespace

ViTConfig parse_vit_config(const nlohmann::json& j, const std::string& path) {
  JsonObject o(j, path);
  ViTConfig c;
  o.get_string("type", "vit", {"vit"});
  c.image_size = int_or_pair(o, j, "image_size", c.image_size, 1, kMaxSize);
  c.patch_size = int_or_pair(o, j, "patch_size", c.patch_size, 1, kMaxSize);
  c.in_channels = o.get_int("in_channels", c.in_channels, 1, 4096);
  c.hidden_size = o.get_int("hidden_size", c.hidden_size, 1, kMaxSize);
  c.num_hidden_layers = o.get_int("num_hidden_layers", c.num_hidden_layers, 0, 1024);
  c.num_attention_heads = o.get_int("num_attention_heads", c.num_attention_heads, 1, 4096);
  c.intermediate_size = o.get_int("intermediate_size", c.intermediate_size, 1, 1 << 20);
  c.layer_norm_eps = static_cast<float>(o.get_number("layer_norm_eps", c.layer_norm_eps, 0.0, 1.0));
  c.qkv_bias = o.get_bool("qkv_bias", c.qkv_bias);
  c.pooling = o.get_string("pooling", c.pooling, {"cls", "mean"});
  c.num_classes = o.get_int("num_classes", c.num_classes, 1, kMaxLabels);
  c.dropout = static_cast<float>(o.get_number("dropout", c.dropout, 0.0, 0.99));
  c.init = o.get_string("init", c.init, {"normal", "lecun"});
  c.init_std = static_cast<float>(o.get_number("init_std", c.init_std, 1e-6, 10.0));
  o.finish();
  validate(c, "[config] " + path + ".");
  return c;
}

ViTConfig parse_hf_vit_config(const nlohmann::json& root, const std::string& what) {
  const nlohmann::json& body = hf_body(root, what);
  HfFields f(body, what);
  ViTConfig c;  // HF ViTConfig defaults (google/vit-base-patch16-224 layout)
  c.image_size = {224, 224};
  c.patch_size = {16, 16};
  c.in_channels = 3;
  c.hidden_size = 768;
  c.num_hidden_layers = 12;
  c.num_attention_heads = 12;
  c.intermediate_size = 3072;
  c.num_classes = 2;  // PretrainedConfig num_labels default
  f.size_pair("image_size", c.image_size, 1, kMaxSize);
  f.size_pair("patch_size", c.patch_size, 1, kMaxSize);
  f.integer("num_channels", c.in_channels, 1, 4096);
  f.integer("hidden_size", c.hidden_size, 1, kMaxSize);
  f.integer("num_hidden_layers", c.num_hidden_layers, 0, 1024);
  f.integer("num_attention_heads", c.num_attention_heads, 1, 4096);
  f.integer("intermediate_size", c.intermediate_size, 1, 1 << 20);
  if (const nlohmann::json* v = f.find("hidden_act")) {
    // ViTIntermediate uses ACT2FN[hidden_act]; HF "gelu" is the exact erf form.
    if (!v->is_string() || v->get<std::string>() != "gelu")
      f.fail("hidden_act", "\"gelu\" (the only activation implemented: exact erf GELU)", *v);
  }
  f.number("layer_norm_eps", c.layer_norm_eps, 0.0, 1.0);
  f.boolean("qkv_bias", c.qkv_bias);
  f.number("hidden_dropout_prob", c.dropout, 0.0, 0.99);
  f.number("attention_probs_dropout_prob", c.attention_dropout, 0.0, 0.99);
  f.number("initializer_range", c.init_std, 1e-6, 10.0);
  int64_t stride = 0;
  f.integer("encoder_stride", stride, 1, kMaxSize);  // masked-image-modelling decoder only
  f.integer("num_labels", c.num_classes, 1, kMaxLabels);
  f.labels("id2label", c.id2label);
  if (!c.id2label.empty()) c.num_classes = static_cast<int64_t>(c.id2label.size());  // id2label wins (HF)
  validate(c, "[vit_config] " + what + ": ");
  return c;
}

ViTConfig load_hf_vit_config(const std::string& path) {
  nlohmann::json j;
  try {
    j = read_json_file(path);
  } catch (const Error& e) {
    throw_error("[vit_config] ", path, ": ", e.what());
  }
  return parse_hf_vit_config(j, path);
}

bool is_hf_vit_config(const nlohmann::json& j) {
  if (!j.is_object()) return false;
  const bool wrapped = j.contains("model_class") && j.contains("config") && j.at("config").is_object();
  const nlohmann::json& body = wrapped ? j.at("config") : j;
  if (body.contains("model_type") && body.at("model_type").is_string()) return body.at("model_type") == "vit";
  const auto& a = body.contains("architectures") ? body.at("architectures") : nlohmann::json();
  return a.is_array() && !a.empty() && a[0].is_string() && a[0].get<std::string>().rfind("ViT", 0) == 0;
}

nlohmann::json ViTConfig::to_json() const {
  return {{"type", "vit"},
          {"image_size", image_size},
          {"patch_size", patch_size},
          {"in_channels", in_channels},
          {"hidden_size", hidden_size},
          {"num_hidden_layers", num_hidden_layers},
          {"num_attention_heads", num_attention_heads},
          {"intermediate_size", intermediate_size},
          {"layer_norm_eps", layer_norm_eps},
          {"qkv_bias", qkv_bias},
          {"pooling", pooling},
          {"num_classes", num_classes},
          {"dropout", dropout},
          {"init", init},
          {"init_std", init_std}};
}

nlohmann::json ViTConfig::to_hub_json() const {
  check(pooling == "cls", "[vit_config] pooling \"", pooling, "\" has no HF ViTForImageClassification "
        "equivalent (it classifies the [class] token)");
  auto size = [](const std::vector<int64_t>& s) {
    return s[0] == s[1] ? nlohmann::json(s[0]) : nlohmann::json(s);
  };
  nlohmann::json id2label_j = nlohmann::json::object(), label2id_j = nlohmann::json::object();
  for (int64_t i = 0; i < num_classes; ++i) {
    const std::string name = i < static_cast<int64_t>(id2label.size()) ? id2label[i] : "LABEL_" + std::to_string(i);
    id2label_j[std::to_string(i)] = name;
    label2id_j[name] = i;
  }
  return {{"architectures", {kArchitecture}},
          {"model_type", "vit"},
          {"image_size", size(image_size)},
          {"patch_size", size(patch_size)},
          {"num_channels", in_channels},
          {"hidden_size", hidden_size},
          {"num_hidden_layers", num_hidden_layers},
          {"num_attention_heads", num_attention_heads},
          {"intermediate_size", intermediate_size},
          {"hidden_act", "gelu"},
          {"hidden_dropout_prob", dropout},
          {"attention_probs_dropout_prob", attention_dropout},
          {"initializer_range", init_std},
          {"layer_norm_eps", layer_norm_eps},
          {"qkv_bias", qkv_bias},
          {"id2label", id2label_j},
          {"label2id", label2id_j}};
}

}  // namespace perceiver::models
