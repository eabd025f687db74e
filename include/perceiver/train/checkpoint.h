// Training checkpoints: one safetensors file holding the model's state dict (parameters and
// buffers) under their own names, the optimizer state under "optimizer.<param>.<slot>", and metadata (format, step,
// optimizer, the full run config as JSON). Written atomically (temporary file, fsync, rename),
// so an interruption never leaves a broken checkpoint.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "perceiver/models/image_classifier.h"
#include "perceiver/optim/optimizer.h"
#include "perceiver/train/train_config.h"

namespace perceiver::train {

inline constexpr const char* kCheckpointFormat = "perceiver.cpp/checkpoint/v1";

void save_checkpoint(const std::string& path, nn::Module& model, const optim::Optimizer* optimizer,
                     int64_t step, const RunConfig& config);

struct Checkpoint {
  RunConfig config;
  int64_t step = 0;
  std::map<std::string, Tensor> params;           // model parameters and buffers (the state dict)
  std::map<std::string, Tensor> optimizer_state;  // names without the "optimizer." prefix
};

// Reads and validates a checkpoint (format tag, config, step); errors name the file.
Checkpoint read_checkpoint(const std::string& path);

// Builds the model described by the checkpoint's config and loads its parameters strictly.
std::unique_ptr<models::ImageClassifier> model_from_checkpoint(const Checkpoint& ckpt, const std::string& path);

}  // namespace perceiver::train
