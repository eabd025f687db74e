// safetensors reading and writing (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}, optional
// "__metadata__": {string: string}}, then the data buffer. The header is untrusted: size, JSON
// shape, dtypes, shapes, offsets, sizes and overlaps are all validated before any data is read.
// F32/F16/BF16/F64 load as float32 tensors; I32/I64/I16/I8/U8/U16/U32/U64/BOOL load as int32
// (range-checked). Errors read "[safetensors] <path>: <what>, expected ..., got ...".
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "perceiver/core/tensor.h"

namespace perceiver::io {

// One tensor as described by a validated header (offsets are relative to the data buffer).
struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // as written in the file: "F32", "BF16", ...
  Shape shape;
  uint64_t begin = 0, end = 0;
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  // in file (header) order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // file offset of the data buffer (8 + N)
  uint64_t data_size = 0;   // bytes in the data buffer
};

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
  std::vector<std::string> order;    // tensor names in header order
  std::vector<std::string> skipped;  // names with unsupported dtypes (only with skip_unsupported)
};

struct SafetensorsLoadOptions {
  // Skip (and list in `skipped`) tensors whose dtype has no conversion (F8_*, complex, ...)
  // instead of failing. Unknown dtype strings are always an error.
  bool skip_unsupported = false;
};

// Reads and validates only the header.
SafetensorsHeader read_safetensors_header(const std::string& path);

SafetensorsFile load_safetensors(const std::string& path, const SafetensorsLoadOptions& opts = {});
// The same from a file's bytes in memory (an HTTP request body); `what` names it in errors.
SafetensorsFile load_safetensors_bytes(const std::string& bytes, const std::string& what,
                                       const SafetensorsLoadOptions& opts = {});

// The raw little-endian bytes of one tensor, whatever its dtype.
std::vector<uint8_t> load_safetensors_raw(const std::string& path, const std::string& name);

// The loaded tensors as (name, tensor) pairs in file order (the save_safetensors input form).
std::vector<std::pair<std::string, Tensor>> ordered_tensors(const SafetensorsFile& file);

// Writes tensors (float32 as F32, int32 as I32, bfloat16/float16 as BF16/F16) in the given
// order, atomically. Names must be unique, non-empty and not "__metadata__".
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// The bytes save_safetensors would write (an HTTP response body).
std::string safetensors_bytes(const std::vector<std::pair<std::string, Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

// Bytes per element of a safetensors dtype string; 0 if the string is unknown.
size_t safetensors_dtype_size(const std::string& dtype);

// IEEE half / bfloat16 bit patterns to float (exact; subnormals, inf and NaN preserved).
float f16_to_f32(uint16_t bits);
float bf16_to_f32(uint16_t bits);

}  // namespace perceiver::io
