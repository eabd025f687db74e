// Module parameter registry and visitor.
#include "perceiver/nn/module.h"

namespace perceiver::nn {

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
  for (auto& [name, child] : children_) child->visit_parameters(fn, prefix + name + ".");
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

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

}  // namespace perceiver::nn
