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
#include "perceiver/io/model_folder.h"
#include "perceiver/models/perceiver_io/perceiver_io.h"
#include "perceiver/models/registry.h"
#include "perceiver/models/vit/vit.h"
#include "perceiver/nn/layers.h"
#include "testing/tiny_data.h"

namespace perceiver::testing {

using models::perceiver_io::TensorMap;

// A loaded model as its concrete class (the test knows which class the folder holds).
template <typename M>
std::unique_ptr<M> downcast(std::unique_ptr<models::Model> model) {
  M* m = dynamic_cast<M*>(model.get());
  if (m == nullptr) throw Error("[test] the model is a " + model->architecture() + ", not the expected class");
  model.release();
  return std::unique_ptr<M>(m);
}

// io::load_model_folder of a Perceiver IO folder.
inline std::unique_ptr<models::perceiver_io::PerceiverIO> load_perceiver_io_folder(const std::string& dir) {
  return downcast<models::perceiver_io::PerceiverIO>(io::load_model_folder(dir));
}

// A model of a config.json (either layout) with the given state dict, loaded strictly (registry +
// Module::load_state_dict, as io::load_model_folder does), in eval mode.
template <typename M>
std::unique_ptr<M> model_from_state(const nlohmann::json& config, const std::map<std::string, Tensor>& state,
                                    const std::string& what) {
  std::unique_ptr<models::Model> model;
  {
    nn::SkipInitGuard skip;
    model = models::create_model(config, what, 0);
  }
  model->load_state_dict(state, what, true);
  model->train(false);
  return downcast<M>(std::move(model));
}

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

// max |a - b|; infinite (fails every bound) when the shapes differ, so a wrong-shaped output
// can never pass as a small difference over the shorter tensor.
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined() || a.shape() != b.shape()) return INFINITY;
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

// Headroom (issue 19): this port's worst ratios against the rules above are about 0.008 (forward),
// 0.02 (losses), 0.01 (gradients) and 0.16 (key biases, whose exact gradient is zero: rounding
// noise only), so the 1e-4 acceptance rule would pass errors ~100x larger than it makes, e.g. a
// LayerNorm eps of 1e-5 instead of ViT's 1e-12 (forward 0.18, loss 0.18, gradients 0.15). Each
// family must also stay within these bounds, a few times what is observed.
constexpr double kForwardHeadroom = 0.05;
constexpr double kLossHeadroom = 0.1;
constexpr double kGradHeadroom = 0.05;         // every gradient but the key biases'
constexpr double kKeyBiasGradHeadroom = 0.5;

inline ::testing::AssertionResult same_shape(const Tensor& got, const Tensor& ref, const std::string& what) {
  if (!got.defined()) return ::testing::AssertionFailure() << what << ": not produced";
  if (got.shape() != ref.shape())
    return ::testing::AssertionFailure() << what << ": shape " << shape_str(got.shape()) << ", reference "
                                         << shape_str(ref.shape());
  return ::testing::AssertionSuccess();
}

}  // namespace perceiver::testing
