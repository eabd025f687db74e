// The one table of model classes (see registry.h).
#include "perceiver/models/registry.h"

#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/models/botnet/botnet.h"
#include "perceiver/models/perceiver.h"
#include "perceiver/models/perceiver_io/perceiver_io.h"
#include "perceiver/models/vit/vit.h"

namespace perceiver::models {
namespace {

std::unique_ptr<Model> create_perceiver_io(const nlohmann::json& config, const std::string& what, uint64_t seed) {
  return std::make_unique<perceiver_io::PerceiverIO>(perceiver_io::parse_hf_config(config, what), seed);
}

std::unique_ptr<Model> create_botnet(const nlohmann::json& config, const std::string& what, uint64_t seed) {
  return std::make_unique<BotNet>(parse_botnet_config(config, what), seed);
}

std::unique_ptr<Model> create_vit(const nlohmann::json& config, const std::string& what, uint64_t seed) {
  return std::make_unique<ViT>(parse_hf_vit_config(config, what), seed);
}

// Our Perceiver classifier: its run-config "model" object plus "architectures".
std::unique_ptr<Model> create_perceiver_classifier(const nlohmann::json& config, const std::string& what,
                                                   uint64_t seed) {
  if (!config.is_object()) throw_error("[config] ", what, ": expected a JSON object, got ", json_shown(config));
  nlohmann::json fields = config;
  fields.erase("architectures");
  fields.erase("model_type");
  return std::make_unique<Perceiver>(parse_perceiver_config(fields, what), seed);
}

}  // namespace

const std::vector<ModelClass>& model_classes() {
  static const std::vector<ModelClass> t = {
      {"PerceiverForMaskedLM", "byte-level masked language model (deepmind/language-perceiver)", create_perceiver_io},
      {"PerceiverForImageClassificationLearned", "image classifier, learned positions", create_perceiver_io},
      {"PerceiverForImageClassificationFourier", "image classifier, Fourier positions", create_perceiver_io},
      {"PerceiverForImageClassificationConvProcessing", "image classifier, conv stem", create_perceiver_io},
      {"PerceiverForOpticalFlow", "optical flow from two frames", create_perceiver_io},
      {"PerceiverForMultimodalAutoencoding", "video + audio + label autoencoder", create_perceiver_io},
      {"PerceiverForSequenceClassification", "byte-level text classifier (regression with num_labels 1)",
       create_perceiver_io},
      {"PerceiverForTokenClassification", "byte-level tagger: a class per byte (ours; not in transformers)",
       create_perceiver_io},
      {"ViTForImageClassification", "Vision Transformer image classifier", create_vit},
      {"botnet26t_256", "BoTNet (2101.11605): ResNet bottlenecks with relative-position self-attention, timm layout",
       create_botnet},
      {Perceiver::kArchitecture, "the Perceiver (2103.03206) classifier of run configs", create_perceiver_classifier},
  };
  return t;
}

std::string architecture_of(const nlohmann::json& config, const std::string& what) {
  if (config.is_object()) {
    auto it = config.find("architectures");
    if (it != config.end() && it->is_array() && it->size() == 1 && (*it)[0].is_string())
      return (*it)[0].get<std::string>();
    it = config.find("model_class");
    if (it != config.end() && it->is_string()) return it->get<std::string>();
    it = config.find("architecture");  // timm hub config.json
    if (it != config.end() && it->is_string()) return it->get<std::string>();
  }
  std::string supported;
  for (const ModelClass& c : model_classes()) supported += std::string(supported.empty() ? "" : ", ") + c.architecture;
  throw_error("[hf_config] ", what, ": expected \"architectures\": [one class name] (one of ", supported, ")");
}

const ModelClass& find_model_class(const std::string& architecture, const std::string& what) {
  std::string supported;
  for (const ModelClass& c : model_classes()) {
    if (architecture == c.architecture) return c;
    supported += std::string(supported.empty() ? "" : ", ") + c.architecture;
  }
  throw_error("[hf_config] ", what, ": architectures: expected one of ", supported, ", got \"", architecture, "\"");
}

std::unique_ptr<Model> create_model(const nlohmann::json& config, const std::string& what, uint64_t seed) {
  return find_model_class(architecture_of(config, what), what).create(config, what, seed);
}

}  // namespace perceiver::models
