// The one model-folder reader (io/model_folder.h): config.json through the registry, the weights
// file through io/state_dict, strict in-place loading with Module::load_state_dict.
#include "perceiver/io/model_folder.h"

#include <sys/stat.h>

#include <filesystem>
#include <map>

#include "perceiver/core/allocator.h"
#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/io/atomic_file.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/io/state_dict.h"
#include "perceiver/ops/reduce.h"
#include "perceiver/models/registry.h"
#include "perceiver/nn/layers.h"

namespace perceiver::io {

namespace {
bool is_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
}  // namespace

std::string find_weights_file(const std::string& dir) {
  for (const char* name : {"model.safetensors", "pytorch_model.bin"}) {
    const std::string path = dir + "/" + name;
    if (is_file(path)) return path;
  }
  throw_error("[model_folder] ", dir, ": expected model.safetensors or pytorch_model.bin, found neither");
}

nlohmann::json read_folder_config(const std::string& dir) {
  const std::string path = dir + "/config.json";
  if (!is_file(path)) throw_error("[model_folder] ", dir, ": expected a config.json in the model folder");
  return read_json_file(path, "hf_config");
}

std::unique_ptr<models::Model> load_model_folder(const std::string& dir, const std::vector<std::string>& accept,
                                                 const std::string& command) {
  return load_model_folder(dir, read_folder_config(dir), accept, command);
}

std::unique_ptr<models::Model> load_model_folder(const std::string& dir, const nlohmann::json& config,
                                                 const std::vector<std::string>& accept, const std::string& command) {
  const std::string config_path = dir + "/config.json";
  const std::string arch = models::architecture_of(config, config_path);
  if (!accept.empty()) {
    std::string expected;
    bool ok = false;
    for (const std::string& a : accept) {
      expected += (expected.empty() ? "" : " or ") + a;
      ok = ok || a == arch;
    }
    if (!ok) throw_error("[", command, "] ", dir, ": expected a ", expected, " model folder, got ", arch);
  }
  const models::ModelClass& cls = models::find_model_class(arch, config_path);
  std::unique_ptr<models::Model> model;
  {
    nn::SkipInitGuard no_init;  // every parameter is overwritten by the strict load below
    AllocationBudget budget(machine_memory_bytes(), "building the model of " + config_path);
    model = cls.create(config, config_path, 0);  // config errors name config.json, before any weights are read
  }
  const std::string weights = find_weights_file(dir);
  StateDict sd = load_state_dict_file(weights);  // safetensors or torch zip, by content
  model->load_state_dict(sd.tensors, weights, /*strict=*/true, /*share_storage=*/true);  // sd is dropped below
  model->train(false);
  return model;
}

std::vector<std::string> init_from_model_folder(models::Model& model, const std::string& dir) {
  const std::string arch = models::architecture_of(read_folder_config(dir), dir + "/config.json");
  const std::string weights = find_weights_file(dir);
  const StateDict sd = load_state_dict_file(weights);
  std::vector<std::string> reinitialised, unused;
  std::map<std::string, Tensor> matching;
  std::map<std::string, bool> used;
  for (const auto& [name, t] : sd.tensors) used[name] = false;
  for (auto& [name, t] : model.state_dict()) {
    auto it = sd.tensors.find(name);
    if (it == sd.tensors.end()) {
      reinitialised.push_back(name + " (not in the folder)");
      continue;
    }
    used[name] = true;
    if (it->second.shape() == t.shape() && it->second.dtype() == t.dtype())
      matching.emplace(name, it->second);
    else
      reinitialised.push_back(name + " (" + shape_str(it->second.shape()) + " " + dtype_name(it->second.dtype()) +
                              " in the folder, " + shape_str(t.shape()) + " " + dtype_name(t.dtype()) + " in this model)");
  }
  for (const auto& [name, u] : used)
    if (!u) unused.push_back(name);
  if (matching.empty())
    throw_error("[init] ", weights, ": no tensor of this ", arch, " folder matches the ", model.architecture(),
                " of the run (names, shapes or dtypes differ throughout; convert a float16/bfloat16 folder to float32 first)");
  model.load_state_dict(matching, weights, /*strict=*/false);
  // A folder of another class (a masked LM for a text classifier) leaves its own head unused.
  if (!unused.empty())
    reinitialised.push_back(std::to_string(unused.size()) + " tensor" + (unused.size() == 1 ? "" : "s") + " of the " +
                            arch + " folder unused (e.g. " + unused.front() + ")");
  return reinitialised;
}

void save_model_folder(const std::string& dir, models::Model& model) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw_error("[model_folder] ", dir, ": cannot create the folder: ", ec.message());
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [name, t] : model.state_dict()) {
    if (const ops::NonFinite r = ops::count_nonfinite(t))
      throw_error("[model_folder] refusing to export to ", dir, ": '", name, "' holds ", r.describe());
    tensors.emplace_back(name, t);
  }
  save_safetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}});
  write_file_atomic(dir + "/config.json", model.hub_config().dump(2) + "\n");
}

}  // namespace perceiver::io
