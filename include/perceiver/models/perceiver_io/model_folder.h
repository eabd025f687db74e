// Hugging Face model folders: config.json (a PerceiverConfig whose "architectures" names the task
// class) plus model.safetensors or pytorch_model.bin. Loading is strict: every missing name,
// unexpected name and shape/dtype mismatch is listed in one Error; float16/bfloat16/float64
// weights are converted to float32 by the readers.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "perceiver/models/perceiver_io/perceiver_io.h"

namespace perceiver::models::perceiver_io {

// The weights file of a folder: model.safetensors if present, else pytorch_model.bin; an Error
// naming both otherwise.
std::string find_weights_file(const std::string& dir);

// Copies a state dict (parameters and buffers, by HF name) into the model. Strict. With
// share_storage the model's tensors take over the given tensors' data instead (no copy: for a
// state dict read from a file and dropped afterwards, so the weights are held once).
void load_perceiver_state(PerceiverIO& model, const std::map<std::string, Tensor>& tensors,
                          const std::string& what, bool share_storage = false);

// Reading a whole folder (config + weights file) is io::load_model_folder (io/model_folder.h),
// in the io layer above the models.

}  // namespace perceiver::models::perceiver_io
