// PyTorch state dicts (`pytorch_model.bin`, torch.save zipfile format, PyTorch >= 1.6) loaded
// without Python and without executing anything. The archive holds `<name>/data.pkl` (a pickle
// of an OrderedDict name -> tensor) and `<name>/data/<key>` raw little-endian storages.
//
// data.pkl is run by a restricted unpickler: a small stack machine that knows only the opcodes
// a state dict uses and only these globals: collections.OrderedDict,
// torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and the storage classes
// torch.{Float,Half,BFloat16,Double,Long,Int,Short,Char,Byte,Bool}Storage. Any other global
// (os.system, builtins.eval, ...) or opcode is refused with an Error naming it; nothing is ever
// imported, called or executed. The pickle, the archive and the storages are untrusted: stack,
// memo, nesting and size limits, shapes, strides, offsets and storage bounds are all validated.
//
// Tensors may be strided views (transposes), share storages or be scalars; each is copied to a
// contiguous tensor. Float16/bfloat16/float64 become float32; int64/int16/int8/uint8/bool become
// int32 (range-checked), as in the safetensors loader. The OrderedDict's `_metadata` attribute
// (module versions) is ignored. Legacy (pre-1.6, non-zip) torch.save files are rejected.
// Errors read "[torch_pickle] <path>: <what>, expected ..., got ...".
#pragma once

#include <string>

#include "perceiver/io/safetensors.h"

namespace perceiver::io {

// Loads a torch.save'd state dict: `tensors` and `order` (pickle insertion order) are filled,
// `metadata` and `skipped` stay empty.
SafetensorsFile load_pytorch_bin(const std::string& path);

// load_pytorch_bin, then an atomic save_safetensors of the tensors in the same order with
// metadata {"format": "pt"} (what Hugging Face writes). int64 tensors are stored as I32.
void convert_to_safetensors(const std::string& in_bin, const std::string& out_safetensors);

}  // namespace perceiver::io
