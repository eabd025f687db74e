// Helpers for the Hugging Face Perceiver IO parity tests: load a fixture folder of
// tests/data/hf (copied from the shared fixtures, README there), build a hub-layout model folder
// from it, and compare tensors with the fixtures' README section 4 criteria.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "perceiver/core/json_reader.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/models/perceiver_io/model_folder.h"
#include "testing/tiny_data.h"

namespace perceiver::testing {

using models::perceiver_io::TensorMap;

inline std::string hf_fixture_dir(const std::string& family) {
  return std::string(PERCEIVER_SOURCE_DIR) + "/tests/data/hf/" + family;
}

struct HfFixture {
  std::string dir;
  nlohmann::json meta;  // the fixture's config.json (wrapper)
  TensorMap inputs, outputs, grads;
};

inline HfFixture load_hf_fixture(const std::string& family) {
  HfFixture f;
  f.dir = hf_fixture_dir(family);
  f.meta = read_json_file(f.dir + "/config.json");
  f.inputs = io::load_safetensors(f.dir + "/inputs.safetensors").tensors;
  f.outputs = io::load_safetensors(f.dir + "/outputs.safetensors").tensors;
  f.grads = io::load_safetensors(f.dir + "/grads.safetensors").tensors;
  return f;
}

// Writes dir/config.json as a hub file ({"architectures": [model_class], fields...}) and copies
// the fixture's model.safetensors next to it.
inline std::string make_hub_folder(const HfFixture& f, const std::string& dir) {
  std::filesystem::create_directories(dir);
  nlohmann::json cfg = f.meta.at("config");
  cfg["architectures"] = {f.meta.at("model_class")};
  cfg["model_type"] = "perceiver";
  std::ofstream(dir + "/config.json") << cfg.dump(2);
  std::filesystem::copy_file(f.dir + "/model.safetensors", dir + "/model.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
  return dir;
}

inline double max_abs(const Tensor& t) {
  double m = 0;
  if (t.dtype() == DType::kI32) {
    for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::fabs(double(t.data<int32_t>()[i])));
    return m;
  }
  for (float v : t.to_vector()) m = std::max(m, std::fabs(double(v)));
  return m;
}

inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = std::fabs(double(x[i]) - double(y[i]));
    if (!std::isfinite(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

// max|got - ref| / (1e-4 * max(1, max|ref|)): <= 1 passes (forward tensors, losses).
inline double forward_ratio(const Tensor& got, const Tensor& ref) {
  return max_abs_diff(got, ref) / (1e-4 * std::max(1.0, max_abs(ref)));
}

// max|got - ref| / (2e-4 * max(max|ref|, 1e-3 G)): <= 1 passes (gradients).
inline double grad_ratio(const Tensor& got, const Tensor& ref, double g_max) {
  return max_abs_diff(got, ref) / (2e-4 * std::max(max_abs(ref), 1e-3 * g_max));
}

inline ::testing::AssertionResult same_shape(const Tensor& got, const Tensor& ref, const std::string& what) {
  if (!got.defined()) return ::testing::AssertionFailure() << what << ": not produced";
  if (got.shape() != ref.shape())
    return ::testing::AssertionFailure() << what << ": shape " << shape_str(got.shape()) << ", reference "
                                         << shape_str(ref.shape());
  return ::testing::AssertionSuccess();
}

}  // namespace perceiver::testing
