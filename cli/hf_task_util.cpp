// Shared helpers of the Hugging Face Perceiver task commands (see hf_task_util.h).
#include "hf_task_util.h"

#include <algorithm>
#include <numeric>

#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/models/perceiver_io/model_folder.h"

namespace perceiver::cli {

namespace pio = models::perceiver_io;

nlohmann::json read_folder_config(const std::string& dir) { return read_json_file(dir + "/config.json"); }

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
  return pio::load_model_folder(dir);
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
