// Internal to io/: the restricted unpickler behind load_pytorch_bin. It runs a state dict's
// data.pkl as a small stack machine over an allow-list of opcodes and globals, never importing
// or calling anything, and returns the tensor descriptions (storage key, dtype, offset, shape,
// stride) it found, in insertion order. Tensor data is read by the caller (torch_pickle.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "perceiver/core/tensor.h"

namespace perceiver::io::pickle {

// The torch.<X>Storage classes a persistent id may name.
enum class StorageType : uint8_t { kFloat, kHalf, kBFloat16, kDouble, kLong, kInt, kShort, kChar,
                                   kByte, kBool };

struct StorageTypeInfo {
  StorageType type;
  const char* name;  // "FloatStorage"
  size_t size;       // bytes per element
  bool is_float;     // loads as float32 (else int32)
};
const StorageTypeInfo& storage_type_info(StorageType t);

// A persistent id ('storage', torch.<X>Storage, key, location, numel).
struct StorageRef {
  std::string key;
  StorageType type = StorageType::kFloat;
  int64_t numel = 0;  // elements of `type`
};

// _rebuild_tensor_v2(storage, offset, size, stride, ...), validated: every element it addresses
// lies inside [0, storage.numel).
struct TensorRef {
  StorageRef storage;
  int64_t offset = 0;  // in elements
  Shape size;
  std::vector<int64_t> stride;  // in elements, non-negative
};

// Runs the restricted unpickler over `bytes` (a data.pkl). The pickle must produce a dict or
// OrderedDict of str -> tensor. `where` names the source in error messages
// ("<file>: <entry>"); errors start with "[torch_pickle] <where>: ".
std::vector<std::pair<std::string, TensorRef>> unpickle_state_dict(const std::string& bytes,
                                                                   const std::string& where);

}  // namespace perceiver::io::pickle
