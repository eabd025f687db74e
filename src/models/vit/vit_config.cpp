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

// Checks every field combination the model needs (HF ViTSelfAttention / ViTPatchEmbeddings);
// `prefix` starts each message ("[config] model." or "[vit_config] file: ").
void validate(const ViTConfig& c, const std::string& prefix) {
  check(c.hidden_size % c.num_attention_heads == 0, prefix, "hidden_size (", c.hidden_size,
        ") must be divisible by num_attention_heads (", c.num_attention_heads, ")");
  for (int a = 0; a < 2; ++a)
    check(c.patch_size[a] <= c.image_size[a], prefix, "patch_size ", c.patch_size[a], " exceeds image_size ",
          c.image_size[a], " along ", a == 0 ? "height" : "width", " (no patch would fit)");
}

// The config body of either HF layout; checks model_type and the class.
const nlohmann::json& hf_body(const nlohmann::json& root, const std::string& what) {
  JsonObject top(root, JsonObject::Mode::kLenient, "vit_config", what);
  const nlohmann::json* body = &root;
  std::string arch;
  if (top.has("model_class")) {
    // Fixture wrapper: {"model_class": "ViTForImageClassification", "config": {ViTConfig fields}}.
    arch = top.get_string("model_class", "");
    const nlohmann::json* inner = top.find("config");
    if (!inner || !inner->is_object())
      throw_error("[vit_config] ", what, ": a file with \"model_class\" must hold the ViTConfig under \"config\" "
                  "(an object)");
    body = inner;
  }
  JsonObject b(*body, JsonObject::Mode::kLenient, "vit_config", what);
  if (const nlohmann::json* a = b.find("architectures")) {
    if (!a->is_array() || a->size() != 1 || !(*a)[0].is_string()) b.fail("architectures", "a list with one class name", *a);
    if (!arch.empty() && arch != (*a)[0].get<std::string>())
      throw_error("[vit_config] ", what, ": model_class \"", arch, "\" differs from architectures ", json_shown(*a));
    arch = (*a)[0].get<std::string>();
  }
  if (!arch.empty() && arch != kArchitecture)
    throw_error("[vit_config] ", what, ": architectures: expected [\"", kArchitecture,
                "\"] (the class implemented), got \"", arch, "\"");
  if (!b.has("model_type")) throw_error("[vit_config] ", what, ": model_type: expected \"vit\", got no such key");
  b.get_string("model_type", "vit", {"vit"});
  return *body;
}

}  // namespace

ViTConfig parse_vit_config(const nlohmann::json& j, const std::string& path) {
  JsonObject o(j, path);
  ViTConfig c;
  o.get_string("type", "vit", {"vit"});
  c.image_size = o.get_int_or_pair("image_size", c.image_size, 1, kMaxSize);
  c.patch_size = o.get_int_or_pair("patch_size", c.patch_size, 1, kMaxSize);
  c.in_channels = o.get_int("in_channels", c.in_channels, 1, 4096);
  c.hidden_size = o.get_int("hidden_size", c.hidden_size, 1, kMaxSize);
  c.num_hidden_layers = o.get_int("num_hidden_layers", c.num_hidden_layers, 0, 1024);
  c.num_attention_heads = o.get_int("num_attention_heads", c.num_attention_heads, 1, 4096);
  c.intermediate_size = o.get_int("intermediate_size", c.intermediate_size, 1, 1 << 20);
  c.layer_norm_eps = o.get_float("layer_norm_eps", c.layer_norm_eps, 0.0, 1.0);
  c.qkv_bias = o.get_bool("qkv_bias", c.qkv_bias);
  c.pooling = o.get_string("pooling", c.pooling, {"cls", "mean"});
  c.num_classes = o.get_int("num_classes", c.num_classes, 1, kMaxLabels);
  c.dropout = o.get_float("dropout", c.dropout, 0.0, 0.99);
  c.init = o.get_string("init", c.init, {"normal", "lecun"});
  c.init_std = o.get_float("init_std", c.init_std, 1e-6, 10.0);
  o.finish();
  validate(c, "[config] " + path + ".");
  return c;
}

ViTConfig parse_hf_vit_config(const nlohmann::json& root, const std::string& what) {
  const nlohmann::json& body = hf_body(root, what);
  JsonObject f(body, JsonObject::Mode::kLenient, "vit_config", what);
  ViTConfig c;  // HF ViTConfig defaults (google/vit-base-patch16-224 layout)
  c.image_size = {224, 224};
  c.patch_size = {16, 16};
  c.in_channels = 3;
  c.hidden_size = 768;
  c.num_hidden_layers = 12;
  c.num_attention_heads = 12;
  c.intermediate_size = 3072;
  c.num_classes = 2;  // PretrainedConfig num_labels default
  c.image_size = f.get_int_or_pair("image_size", c.image_size, 1, kMaxSize);
  c.patch_size = f.get_int_or_pair("patch_size", c.patch_size, 1, kMaxSize);
  c.in_channels = f.get_int("num_channels", c.in_channels, 1, 4096);
  c.hidden_size = f.get_int("hidden_size", c.hidden_size, 1, kMaxSize);
  c.num_hidden_layers = f.get_int("num_hidden_layers", c.num_hidden_layers, 0, 1024);
  c.num_attention_heads = f.get_int("num_attention_heads", c.num_attention_heads, 1, 4096);
  c.intermediate_size = f.get_int("intermediate_size", c.intermediate_size, 1, 1 << 20);
  // ViTIntermediate uses ACT2FN[hidden_act]; HF "gelu" is the exact erf form.
  if (const nlohmann::json* v = f.find("hidden_act"); v && !(v->is_string() && *v == "gelu"))
    f.fail("hidden_act", "\"gelu\" (the only activation implemented: exact erf GELU)", *v);
  c.layer_norm_eps = f.get_float("layer_norm_eps", c.layer_norm_eps, 0.0, 1.0);
  c.qkv_bias = f.get_bool("qkv_bias", c.qkv_bias);
  c.dropout = f.get_float("hidden_dropout_prob", c.dropout, 0.0, 0.99);
  c.attention_dropout = f.get_float("attention_probs_dropout_prob", c.attention_dropout, 0.0, 0.99);
  c.init_std = f.get_float("initializer_range", c.init_std, 1e-6, 10.0);
  f.get_int("encoder_stride", 0, 1, kMaxSize);  // masked-image-modelling decoder only
  c.num_classes = f.get_int("num_labels", c.num_classes, 1, kMaxLabels);
  c.id2label = f.get_labels("id2label", c.id2label);
  if (!c.id2label.empty()) {
    if (static_cast<int64_t>(c.id2label.size()) > kMaxLabels)
      throw_error(f.name("id2label"), ": expected at most ", kMaxLabels, " labels, got ", c.id2label.size());
    c.num_classes = static_cast<int64_t>(c.id2label.size());  // id2label wins (HF)
  }
  validate(c, "[vit_config] " + what + ": ");
  return c;
}

ViTConfig load_hf_vit_config(const std::string& path) {
  return parse_hf_vit_config(read_json_file(path, "vit_config"), path);
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
