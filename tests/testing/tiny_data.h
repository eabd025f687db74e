// Writes a tiny Fashion-MNIST-shaped dataset (raw IDX files) into a temporary directory, so
// training tests run in seconds without the real data. Images are class-dependent patterns
// plus noise, so a model can learn them.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "perceiver/core/random.h"

namespace perceiver::testing {

inline void write_be32(std::FILE* f, uint32_t v) {
  const unsigned char b[4] = {static_cast<unsigned char>(v >> 24), static_cast<unsigned char>(v >> 16),
                              static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
  std::fwrite(b, 1, 4, f);
}

inline void write_idx_images(const std::string& path, const std::vector<uint8_t>& px, uint32_t n, uint32_t rows,
                             uint32_t cols) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  write_be32(f, 0x00000803);
  write_be32(f, n);
  write_be32(f, rows);
  write_be32(f, cols);
  std::fwrite(px.data(), 1, px.size(), f);
  std::fclose(f);
}

inline void write_idx_labels(const std::string& path, const std::vector<uint8_t>& labels) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  write_be32(f, 0x00000801);
  write_be32(f, static_cast<uint32_t>(labels.size()));
  std::fwrite(labels.data(), 1, labels.size(), f);
  std::fclose(f);
}

// A fresh temporary directory removed on destruction.
struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "perceiver_test_XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// Class c draws a bright horizontal bar at row 2 + 2c and a vertical one at column 27 - 2c.
inline void make_tiny_fashion_mnist(const std::string& dir, uint32_t n_train, uint32_t n_test, uint64_t seed = 1) {
  std::filesystem::create_directories(dir);
  Rng rng(seed);
  auto make = [&](uint32_t n, const std::string& images, const std::string& labels) {
    std::vector<uint8_t> px(n * 28 * 28), lab(n);
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t c = i % 10;
      lab[i] = static_cast<uint8_t>(c);
      for (int y = 0; y < 28; ++y)
        for (int x = 0; x < 28; ++x) {
          int v = static_cast<int>(rng.below(40));
          if (y == static_cast<int>(2 + 2 * c) || x == static_cast<int>(27 - 2 * c)) v += 200;
          px[i * 784 + y * 28 + x] = static_cast<uint8_t>(std::min(v, 255));
        }
    }
    write_idx_images(dir + "/" + images, px, n, 28, 28);
    write_idx_labels(dir + "/" + labels, lab);
  };
  make(n_train, "train-images-idx3-ubyte", "train-labels-idx1-ubyte");
  make(n_test, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte");
}

}  // namespace perceiver::testing
