// Shared helpers of the Hugging Face Perceiver task commands (see hf_task_util.h).
#include "hf_task_util.h"

#include "perceiver/core/allocator.h"

#include <algorithm>
#include <filesystem>
#include <numeric>

#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/io/state_dict.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/models/perceiver_io/model_folder.h"
#include "perceiver/models/vit/vit_config.h"

namespace perceiver::cli {

namespace pio = models::perceiver_io;

nlohmann::json read_folder_config(const std::string& dir) { return read_json_file(dir + "/config.json", "hf_config"); }

std::string folder_architecture(const nlohmann::json& config, const std::string& dir, const std::string& command) {
  if (config.is_object()) {
    auto it = config.find("architectures");
    if (it != config.end() && it->is_array() && !it->empty() && (*it)[0].is_string()) return (*it)[0].get<std::string>();
    it = config.find("model_class");
    if (it != config.end() && it->is_string()) return it->get<std::string>();
  }
  throw_error("[", command, "] ", dir, "/config.json: expected an \"architectures\" list naming the model class, got none");
}

std::unique_ptr<pio::PerceiverIO> load_task_model(const std::string& dir, const std::vector<pio::PerceiverTask>& tasks,
                                                  const std::string& command) {
  const std::string arch = folder_architecture(read_folder_config(dir), dir, command);
  std::string expected;
  bool ok = false;
  for (pio::PerceiverTask t : tasks) {
    expected += std::string(expected.empty() ? "" : " or ") + pio::architecture_name(t);
    ok = ok || arch == pio::architecture_name(t);
  }
  check(ok, "[", command, "] ", dir, ": expected a ", expected, " model folder, got ", arch);
  return io::load_model_folder(dir);
}

bool is_vit_folder(const std::string& dir) {
  const std::string path = dir + "/config.json";
  if (!std::filesystem::is_regular_file(path)) return false;
  return models::is_hf_vit_config(read_json_file(path, "hf_config"));
}

std::unique_ptr<models::ViT> load_vit_folder(const std::string& dir) {
  const std::string config_path = dir + "/config.json";
  const nlohmann::json config = read_json_file(config_path, "vit_config");
  (void)models::parse_hf_vit_config(config, config_path);  // config errors name config.json, before any weights are read
  const std::string weights = pio::find_weights_file(dir);
  const io::StateDict sd = io::load_state_dict_file(weights);  // safetensors or torch zip, by content
  AllocationBudget budget(machine_memory_bytes(), "building the model of " + config_path);
  return models::make_vit_from_hf(config, sd.tensors, weights);
}

const Tensor& vit_input(const std::map<std::string, Tensor>& inputs, const std::string& name, const std::string& file,
                        const std::string& command) {
  auto it = inputs.find(name);
  if (it != inputs.end()) return it->second;
  std::string got;
  for (const auto& [n, t] : inputs) got += (got.empty() ? "" : ", ") + n;
  throw_error("[", command, "] ", file, ": a ViT model folder takes '", name, "', got inputs: ", got.empty() ? "none" : got);
}

std::vector<int64_t> top_indices(const float* p, int64_t n, int64_t k) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  k = std::clamp<int64_t>(k, 0, n);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [p](int64_t x, int64_t y) { return p[x] > p[y] || (p[x] == p[y] && x < y); });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

}  // namespace perceiver::cli
