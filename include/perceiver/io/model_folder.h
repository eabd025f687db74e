// The one model-folder reader: config.json (parsed once; its "architectures" picks the class from
// models/registry.h: the six Perceiver IO task classes, ViT, the Perceiver classifier) plus
// model.safetensors or pytorch_model.bin. Loading is strict (every missing name, unexpected name
// and shape/dtype mismatch in one Error) and in place (the model's tensors take over the file's;
// float16/bfloat16/float64 weights become float32). Building the model is refused before
// allocating when its parameters would not fit this machine's memory.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "perceiver/models/model.h"

namespace perceiver::io {

// The weights file of a folder: model.safetensors if present, else pytorch_model.bin; an Error
// naming both otherwise.
std::string find_weights_file(const std::string& dir);

// dir/config.json, parsed with the JSON limits (errors name the file).
nlohmann::json read_folder_config(const std::string& dir);

// Reads the folder; the model is returned in eval mode. With `accept` non-empty the class must be
// one of those: otherwise an Error such as "[flow] DIR: expected a PerceiverForOpticalFlow model
// folder, got PerceiverForMaskedLM", from config.json before any weights are read.
std::unique_ptr<models::Model> load_model_folder(const std::string& dir, const std::vector<std::string>& accept = {},
                                                 const std::string& command = "model_folder");
// The same with dir/config.json already parsed (read_folder_config), so a command that also
// needs the config (classify: the image processor) parses it once. (Its defaults make a call
// with the config pick this overload, not the one above through json's conversion to a vector.)
std::unique_ptr<models::Model> load_model_folder(const std::string& dir, const nlohmann::json& config,
                                                 const std::vector<std::string>& accept = {},
                                                 const std::string& command = "model_folder");

// Fine-tuning start: loads into `model` every tensor of a model folder with the same name and
// shape (the folder may hold another class: a PerceiverForMaskedLM's encoder starts a
// PerceiverForSequenceClassification). Returns, for the log, the model's tensors that keep their
// fresh initialisation (absent from the folder, or of another shape: a new head) and a count of
// the folder's unused tensors; an error when nothing matches.
std::vector<std::string> init_from_model_folder(models::Model& model, const std::string& dir);

// Writes a hub-layout folder that load_model_folder (and Hugging Face from_pretrained, for the HF
// classes) reads: config.json (model.hub_config()) and model.safetensors (the state dict under
// its HF names, {"format": "pt"}), each file atomically; creates dir. Refuses non-finite weights.
void save_model_folder(const std::string& dir, models::Model& model);

}  // namespace perceiver::io
