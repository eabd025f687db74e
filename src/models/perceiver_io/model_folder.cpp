// Strict loading of a state dict into a Perceiver IO model, and the weights-file lookup of a
// hub-layout folder (reading the files is io/model_folder.cpp).
#include "perceiver/models/perceiver_io/model_folder.h"

#include <sys/stat.h>

#include <set>
#include <vector>

#include "perceiver/nn/layers.h"

namespace perceiver::models::perceiver_io {

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

void load_perceiver_state(PerceiverIO& model, const std::map<std::string, Tensor>& tensors, const std::string& what,
                          bool share_storage) {
  std::vector<std::string> missing, mismatched, unexpected;
  std::set<std::string> used;
  std::vector<nn::NamedTensor> state = model.state_dict();
  for (auto& [name, dst] : state) {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      missing.push_back(name);
      continue;
    }
    used.insert(name);
    if (it->second.shape() != dst.shape() || it->second.dtype() != dst.dtype())
      mismatched.push_back(name + " (expected " + dtype_name(dst.dtype()) + shape_str(dst.shape()) + ", got " +
                           dtype_name(it->second.dtype()) + shape_str(it->second.shape()) + ")");
  }
  for (const auto& [name, t] : tensors)
    if (!used.count(name)) unexpected.push_back(name);
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::string msg = "[model_folder] " + what + ": the weights do not match " + model.config().architecture +
                      " built from its config.";
    auto list = [&](const char* title, const std::vector<std::string>& v) {
      if (v.empty()) return;
      msg += std::string("\n  ") + title + " (" + std::to_string(v.size()) + "):";
      for (const auto& n : v) msg += "\n    " + n;
    };
    list("missing", missing);
    list("unexpected", unexpected);
    list("shape/dtype mismatch", mismatched);
    throw Error(msg);
  }
  // A tensor whose storage backs another entry too (tied weights in a torch zip) is copied, so
  // that two parameters never alias one buffer.
  auto aliased = [&](const Tensor& t) {
    int users = 0;
    for (const auto& [other_name, other] : tensors) users += other.same_storage(t);
    return users > 1;
  };
  for (auto& [name, dst] : state) {
    const Tensor& src = tensors.at(name);
    if (share_storage && !aliased(src)) dst.share_data(src);
    else dst.copy_from(src);
  }
  model.refresh_precision();
}

}  // namespace perceiver::models::perceiver_io
