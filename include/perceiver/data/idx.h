// IDX files (the MNIST / Fashion-MNIST format): a big-endian magic 0x0000TTRR (TT element type,
// RR rank), RR big-endian uint32 dimensions, then the elements. Files may be raw or gzip'ed
// (detected by content). Only unsigned-byte data (TT = 0x08) is supported. Declared vs actual
// size, trailing bytes and corrupt gzip streams all fail with "[idx] <path>: ...".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace perceiver::data {

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> values;  // row-major, product(dims) bytes
};

struct IdxImages {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols, row-major
};

// Any rank-1..4 uint8 IDX file.
IdxArray read_idx(const std::string& path);

// Magic 0x00000803: uint8 images [count, rows, cols].
IdxImages read_idx_images(const std::string& path);

// Magic 0x00000801: uint8 labels [count].
std::vector<uint8_t> read_idx_labels(const std::string& path);

// Writers (tests and tools): raw IDX, or gzip'ed when `gzip` is true; atomic.
void write_idx(const std::string& path, const IdxArray& array, bool gzip = false);

}  // namespace perceiver::data
