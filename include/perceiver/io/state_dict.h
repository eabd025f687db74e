// Format-agnostic state dict loading: picks the safetensors or the torch.save (zip) loader from
// the file's leading bytes, so `model.safetensors` and `pytorch_model.bin` load the same way.
// Errors read "[state_dict] <path>: <what>, expected ..., got ..." (or the chosen loader's).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "perceiver/core/tensor.h"

namespace perceiver::io {

enum class StateDictFormat { kSafetensors, kTorchZip };

const char* state_dict_format_name(StateDictFormat f);  // "safetensors", "torch zip"

struct StateDict {
  StateDictFormat format = StateDictFormat::kSafetensors;
  std::map<std::string, Tensor> tensors;         // float32 or int32, contiguous
  std::vector<std::string> order;                // names in file order
  std::map<std::string, std::string> metadata;   // safetensors __metadata__ (empty for torch)
};

// Sniffs the first bytes: "PK\3\4" is a torch.save zip archive; an 8-byte little-endian length
// followed by '{' is safetensors. Anything else (including legacy pickle-only torch.save files)
// is an Error that names what was found.
StateDictFormat detect_state_dict_format(const std::string& path);

// Loads every tensor of a .safetensors or pytorch_model.bin file.
StateDict load_state_dict_file(const std::string& path);

}  // namespace perceiver::io
