// One table of model classes: a config.json (hub layout {"architectures": [...], ...} or the
// fixtures' {"model_class": ..., "config": {...}}) is parsed once and its class name picks the row
// that builds the model. Rows: the six Perceiver IO task classes, ViTForImageClassification,
// BoTNet (timm botnet26t_256) and the Perceiver classifier of run configs (PerceiverClassifier).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "perceiver/models/model.h"

namespace perceiver::models {

struct ModelClass {
  const char* architecture;
  const char* summary;
  // Builds the model a config describes (lenient hub parsing; errors name `what`), initialised
  // from `seed` (nn::SkipInitGuard skips the draws when weights are loaded over it).
  std::unique_ptr<Model> (*create)(const nlohmann::json& config, const std::string& what, uint64_t seed);
};

const std::vector<ModelClass>& model_classes();

// The class name of a config: architectures[0] (HF hub), model_class (fixture wrapper) or
// architecture (timm hub config.json); an Error naming `what` and the supported classes otherwise.
std::string architecture_of(const nlohmann::json& config, const std::string& what);

// The registry row for a class name; an Error listing the supported classes when unknown.
const ModelClass& find_model_class(const std::string& architecture, const std::string& what);

// architecture_of + find_model_class + create.
std::unique_ptr<Model> create_model(const nlohmann::json& config, const std::string& what, uint64_t seed = 0);

}  // namespace perceiver::models
