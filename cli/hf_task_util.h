// Helpers shared by the task commands for Hugging Face Perceiver model folders (fill-mask,
// classify, flow, autoencode, run, grad): reading a folder's config.json, loading a model of the
// expected task class with a clear error otherwise, loading ViT folders, and ranking scores.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "perceiver/models/perceiver_io/perceiver_io.h"
#include "perceiver/models/vit/vit.h"

namespace perceiver::cli {

// dir/config.json parsed (an Error naming the file when missing or malformed).
nlohmann::json read_folder_config(const std::string& dir);

// The HF class name of a folder's config: architectures[0] (hub layout) or model_class (the
// fixtures' wrapper); an Error naming `command` when neither is there.
std::string folder_architecture(const nlohmann::json& config, const std::string& dir, const std::string& command);

// Loads a Perceiver IO model folder whose class is one of `tasks`; otherwise an Error such as
// "[flow] DIR: expected a PerceiverForOpticalFlow model folder, got PerceiverForMaskedLM".
std::unique_ptr<models::perceiver_io::PerceiverIO> load_task_model(
    const std::string& dir, const std::vector<models::perceiver_io::PerceiverTask>& tasks, const std::string& command);

// True when dir/config.json exists and describes a ViT (models::is_hf_vit_config: model_type
// "vit" or a ViT* architecture); false otherwise, so the Perceiver loader reports a missing file.
bool is_vit_folder(const std::string& dir);

// Loads an HF ViTForImageClassification folder (config.json + model.safetensors or
// pytorch_model.bin) strictly, in eval mode; config errors name config.json, weight errors the
// weights file.
std::unique_ptr<models::ViT> load_vit_folder(const std::string& dir);

// inputs.at(name) for a ViT folder's command, else an Error such as
// "[run] IN.safetensors: a ViT model folder takes 'pixel_values', got inputs: a, b".
const Tensor& vit_input(const std::map<std::string, Tensor>& inputs, const std::string& name, const std::string& file,
                        const std::string& command);

// Indices of the k largest values of p[0..n), largest first (ties: lower index first).
std::vector<int64_t> top_indices(const float* p, int64_t n, int64_t k);

}  // namespace perceiver::cli
