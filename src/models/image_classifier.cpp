// Image-classifier factory: "type" -> config parser and constructor.
#include "perceiver/models/image_classifier.h"

#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/functions_interpolate.h"
#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/models/botnet/botnet.h"
#include "perceiver/models/perceiver.h"
#include "perceiver/models/perceiver_io_image_classifier.h"
#include "perceiver/models/vit/vit.h"

namespace perceiver::models {

std::vector<std::string> image_classifier_types() { return {"perceiver", "vit", "perceiver_io", "botnet"}; }

namespace {
std::string type_of(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) throw_error("[config] ", path, ": expected an object, got ", json_shown(j));
  if (!j.contains("type")) return "perceiver";
  const auto& t = j.at("type");
  const auto types = image_classifier_types();
  std::string allowed;
  for (const auto& s : types) allowed += (allowed.empty() ? "\"" : ", \"") + s + "\"";
  if (!t.is_string() || std::find(types.begin(), types.end(), t.get<std::string>()) == types.end())
    throw_error("[config] ", path, ".type: expected one of ", allowed, ", got ", json_shown(t));
  return t.get<std::string>();
}
}  // namespace

Tensor ImageClassifier::loss(const TensorMap& outputs, const TensorMap& inputs) const {
  auto logits = outputs.find("logits");
  auto labels = inputs.find("labels");
  if (logits == outputs.end()) throw_error("[", architecture(), "] loss: expected outputs with 'logits'");
  if (labels == inputs.end() || labels->second.dtype() != DType::kI32) {
    std::string got;
    for (const auto& [n, t] : inputs) got += (got.empty() ? "" : ", ") + n + " (" + dtype_name(t.dtype()) + ")";
    throw_error("[", architecture(), "] loss: expected int32 'labels' (class ids) among the inputs, got inputs: ",
                got.empty() ? "none" : got);
  }
  return ag::cross_entropy(logits->second, labels->second, 0.0f);
}

Tensor images_to_nchw(const Tensor& images, int64_t channels, const std::string& who) {
  check(images.defined() && images.dtype() == DType::kF32 &&
            ((images.rank() == 3 && channels == 1) || (images.rank() == 4 && images.dim(3) == channels)),
        "[", who, "] images must be float32 ", channels == 1 ? "(B, H, W) or " : "", "(B, H, W, ", channels,
        "), got ", images.defined() ? shape_str(images.shape()) : std::string("undefined"));
  const int64_t b = images.dim(0), h = images.dim(1), w = images.dim(2);
  // one channel: (B, H, W) is already NCHW with C = 1; channels-last moves C to axis 1
  return channels == 1 ? ag::reshape(images, {b, 1, h, w})
                       : ag::tokens_to_channels_first(ag::reshape(images, {b, h * w, channels}), h, w);
}

nlohmann::json normalize_image_classifier_config(const nlohmann::json& j, const std::string& path) {
  const std::string type = type_of(j, path);
  if (type == "perceiver") return parse_perceiver_config(j, path).to_json();
  if (type == "vit") return parse_vit_config(j, path).to_json();
  if (type == "perceiver_io") return normalize_perceiver_io_classifier_config(j, path);
  if (type == "botnet") return botnet_run_json(parse_botnet_run_config(j, path));
  throw_error("[config] ", path, ".type: unsupported '", type, "'");
}

std::unique_ptr<ImageClassifier> make_image_classifier(const nlohmann::json& normalized, uint64_t seed) {
  const std::string type = type_of(normalized, "model");
  if (type == "perceiver") return std::make_unique<Perceiver>(parse_perceiver_config(normalized), seed);
  if (type == "vit") return std::make_unique<ViT>(parse_vit_config(normalized), seed);
  if (type == "perceiver_io") return std::make_unique<PerceiverIOImageClassifier>(normalized, seed);
  if (type == "botnet") return std::make_unique<BotNet>(parse_botnet_run_config(normalized), seed);
  throw_error("[config] model.type: unsupported '", type, "'");
}

}  // namespace perceiver::models
