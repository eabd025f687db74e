// Checkpoint save/load (format described in checkpoint.h).
#include "perceiver/train/checkpoint.h"

#include "perceiver/core/allocator.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/nn/layers.h"
#include "perceiver/ops/reduce.h"

namespace perceiver::train {

namespace {
constexpr const char* kOptPrefix = "optimizer.";
}

void save_checkpoint(const std::string& path, nn::Module& model, const optim::Optimizer* optimizer,
                     int64_t step, const RunConfig& config) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  // the model's whole state: parameters and buffers (batch-norm statistics, a fixed filterbank)
  for (auto& [name, t] : model.state_dict()) tensors.emplace_back(name, t);
  std::map<std::string, std::string> meta{{"format", kCheckpointFormat},
                                          {"step", std::to_string(step)},
                                          {"config", config.to_json().dump()}};
  if (optimizer) {
    meta["optimizer"] = config.train.optimizer;
    for (auto& [name, t] : optimizer->state_tensors()) tensors.emplace_back(kOptPrefix + name, t);
  }
  // A checkpoint never holds NaN/Inf: the previous file stays in place instead.
  for (const auto& [name, t] : tensors)
    if (const ops::NonFinite r = ops::count_nonfinite(t))
      throw_error("[checkpoint] refusing to write ", path, ": '", name, "' holds ", r.describe(),
                  "; the previous file is kept");
  io::save_safetensors(path, tensors, meta);
}

Checkpoint read_checkpoint(const std::string& path) {
  io::SafetensorsFile file = io::load_safetensors(path);
  auto meta = [&](const char* key) -> const std::string& {
    auto it = file.metadata.find(key);
    check(it != file.metadata.end(), "[checkpoint] ", path, ": metadata has no '", key,
          "' entry; is this a perceiver.cpp checkpoint?");
    return it->second;
  };
  check(meta("format") == kCheckpointFormat, "[checkpoint] ", path, ": format '", meta("format"),
        "' is not supported, expected '", kCheckpointFormat, "'");
  Checkpoint ckpt;
  try {
    ckpt.config = parse_run_config(parse_json(meta("config"), path + ": metadata config", "checkpoint"));
  } catch (const std::exception& e) {
    throw_error("[checkpoint] ", path, ": invalid config in metadata: ", e.what());
  }
  const std::string& step = meta("step");
  check(!step.empty() && step.find_first_not_of("0123456789") == std::string::npos && step.size() < 19,
        "[checkpoint] ", path, ": metadata step must be a non-negative integer, got '", step, "'");
  ckpt.step = std::stoll(step);
  for (auto& [name, t] : file.tensors) {
    if (name.rfind(kOptPrefix, 0) == 0) ckpt.optimizer_state[name.substr(std::string(kOptPrefix).size())] = t;
    else ckpt.params[name] = t;
  }
  return ckpt;
}

std::unique_ptr<models::ImageClassifier> model_from_checkpoint(const Checkpoint& ckpt, const std::string& path) {
  std::unique_ptr<models::ImageClassifier> model;
  {
    nn::SkipInitGuard no_init;  // load_state_dict below is strict: every parameter is overwritten
    AllocationBudget budget(machine_memory_bytes(), "building the model of " + path);
    model = models::make_image_classifier(ckpt.config.model, ckpt.config.train.seed);
  }
  model->load_state_dict(ckpt.params, path);
  model->train(false);
  return model;
}

}  // namespace perceiver::train
