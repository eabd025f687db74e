// Module parameter registry and visitor.
#include "perceiver/nn/module.h"

namespace perceiver::nn {
namespace {
std::string child_prefix(const std::string& prefix, const std::string& name) {
  return name.empty() ? prefix : prefix + name + ".";
}
}  // namespace

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  for (auto& [n, t] : params_)
    check(n != name, "[Module] parameter '", name, "' registered twice");
  value.set_requires_grad(true);
  params_.emplace_back(name, value);
  return params_.back().second;
}

void Module::visit_parameters(const std::function<void(const std::string&, Tensor&)>& fn,
                              const std::string& prefix) {
  for (auto& [name, t] : params_) fn(prefix + name, t);
  for (auto& [name, child] : children_) child->visit_parameters(fn, child_prefix(prefix, name));
}

std::vector<NamedTensor> Module::named_parameters() {
  std::vector<NamedTensor> out;
  visit_parameters([&](const std::string& n, Tensor& t) { out.emplace_back(n, t); });
  return out;
}

int64_t Module::num_parameters() {
  int64_t n = 0;
  visit_parameters([&](const std::string&, Tensor& t) { n += t.numel(); });
  return n;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  for (auto& [n, t] : buffers_)
    check(n != name, "[Module] buffer '", name, "' registered twice");
  buffers_.emplace_back(name, value);
  return buffers_.back().second;
}

void Module::visit_buffers(const std::function<void(const std::string&, Tensor&)>& fn, const std::string& prefix) {
  for (auto& [name, t] : buffers_) fn(prefix + name, t);
  for (auto& [name, child] : children_) child->visit_buffers(fn, child_prefix(prefix, name));
}

std::vector<NamedTensor> Module::state_dict() {
  std::vector<NamedTensor> out = named_parameters();
  visit_buffers([&](const std::string& n, Tensor& t) { out.emplace_back(n, t); });
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& tensors, const std::string& what, bool strict,
                             bool share_storage) {
  std::vector<std::string> missing, mismatched, unexpected;
  std::map<std::string, bool> used;
  for (const auto& kv : tensors) used[kv.first] = false;
  std::vector<NamedTensor> state = state_dict();
  auto matches = [](const Tensor& src, const Tensor& dst) {
    return src.shape() == dst.shape() && src.dtype() == dst.dtype();
  };
  for (auto& [name, dst] : state) {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      missing.push_back(name);
      continue;
    }
    used[name] = true;
    if (!matches(it->second, dst))
      mismatched.push_back(name + " (expected " + dtype_name(dst.dtype()) + shape_str(dst.shape()) + ", got " +
                           dtype_name(it->second.dtype()) + shape_str(it->second.shape()) + ")");
  }
  for (const auto& [name, u] : used)
    if (!u) unexpected.push_back(name);
  if (strict && (!missing.empty() || !unexpected.empty() || !mismatched.empty())) {
    std::string msg = "[load] " + what + ": the tensors do not match the model.";
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
  // that two model tensors never alias one buffer.
  auto aliased = [&](const Tensor& t) {
    int users = 0;
    for (const auto& [other_name, other] : tensors) users += other.same_storage(t);
    return users > 1;
  };
  for (auto& [name, dst] : state) {
    auto it = tensors.find(name);
    if (it == tensors.end() || !matches(it->second, dst)) continue;
    if (share_storage && !aliased(it->second)) dst.share_data(it->second);
    else dst.copy_from(it->second);
  }
}

void Module::set_precision(Precision p, bool keep_f32_weights) {
  precision_ = p;
  keep_f32_weights_ = keep_f32_weights;
  on_precision_changed();
  for (auto& [name, child] : children_) child->set_precision(p, keep_f32_weights);
}

void Module::set_activation_checkpointing(bool on) {
  checkpointing_ = on;
  for (auto& [name, child] : children_) child->set_activation_checkpointing(on);
}

bool Module::any_parameter_requires_grad() const {
  for (const auto& [name, t] : params_)
    if (t.requires_grad()) return true;
  for (const auto& [name, child] : children_)
    if (child->any_parameter_requires_grad()) return true;
  return false;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

}  // namespace perceiver::nn
