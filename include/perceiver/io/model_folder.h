// Hugging Face Perceiver IO model folders: config.json (a PerceiverConfig whose "architectures"
// names the task class) plus model.safetensors or pytorch_model.bin. Loading is strict (every
// missing name, unexpected name and shape/dtype mismatch in one Error) and in place (the model's
// tensors take over the file's; float16/bfloat16/float64 weights become float32).
#pragma once

#include <memory>
#include <string>

#include "perceiver/models/perceiver_io/perceiver_io.h"

namespace perceiver::io {

// Reads dir/config.json and the weights file; the model is returned in eval mode.
std::unique_ptr<models::perceiver_io::PerceiverIO> load_model_folder(const std::string& dir);

}  // namespace perceiver::io
