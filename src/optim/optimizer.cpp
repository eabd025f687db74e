// Optimizer base: option and parameter validation, the weight-decay mask, gradient lookup,
// strict checkpoint state save/load, and the make_optimizer factory.
#include "perceiver/optim/optimizer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <sstream>
#include <utility>

#include "kernels/cpu/optimizer.h"
#include "perceiver/optim/adamw.h"
#include "perceiver/optim/lamb.h"

namespace perceiver::optim {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool contains_any(const std::string& s, const std::vector<std::string>& parts) {
  for (const std::string& p : parts)
    if (!p.empty() && s.find(p) != std::string::npos) return true;
  return false;
}

void validate_options(const OptimizerOptions& o) {
  auto in_unit = [](float b) { return std::isfinite(b) && b >= 0.0f && b < 1.0f; };
  check(in_unit(o.beta1), "[optimizer] beta1 must be in [0, 1), got ", o.beta1);
  check(in_unit(o.beta2), "[optimizer] beta2 must be in [0, 1), got ", o.beta2);
  check(std::isfinite(o.eps) && o.eps >= 0.0f, "[optimizer] eps must be finite and >= 0, got ", o.eps);
  check(std::isfinite(o.weight_decay) && o.weight_decay >= 0.0f,
        "[optimizer] weight_decay must be finite and >= 0, got ", o.weight_decay);
  check(in_unit(o.ema_decay), "[optimizer] ema_decay must be in [0, 1), got ", o.ema_decay);
}

std::vector<std::string> state_slots(bool ema) {
  std::vector<std::string> slots = {".exp_avg", ".exp_avg_sq", ".step"};
  if (ema) slots.push_back(".ema");
  return slots;
}

}  // namespace

bool default_weight_decay(const std::string& name, const Tensor& t) {
  if (t.defined() && t.rank() <= 1) return false;
  if (ends_with(name, ".bias")) return false;
  static const std::vector<std::string> kNoDecay = {"norm", "latents", "position_embeddings", "pos_emb"};
  return !contains_any(name, kNoDecay);
}

Optimizer::Optimizer(std::vector<NamedTensor> params, OptimizerOptions options)
    : params_(std::move(params)), options_(std::move(options)) {
  validate_options(options_);
  std::set<std::string> seen;
  state_.reserve(params_.size());
  for (auto& [name, t] : params_) {
    check(!name.empty(), "[optimizer] parameter names must be non-empty");
    check(seen.insert(name).second, "[optimizer] duplicate parameter name \"", name, "\"");
    check(t.defined(), "[optimizer] parameter \"", name, "\" is undefined");
    check(t.dtype() == DType::kF32, "[optimizer] parameter \"", name, "\" must be float32, got ",
          dtype_name(t.dtype()));
    ParamState s;
    s.exp_avg = Tensor::zeros(t.shape());
    s.exp_avg_sq = Tensor::zeros(t.shape());
    if (has_ema()) s.ema = t.detach().clone();
    if (contains_any(name, options_.decay_exclude))
      s.decay = false;
    else if (contains_any(name, options_.decay_include))
      s.decay = true;
    else
      s.decay = default_weight_decay(name, t);
    state_.push_back(std::move(s));
  }
}

void Optimizer::zero_grad() {
  for (auto& [name, t] : params_) t.zero_grad();
}

bool Optimizer::applies_weight_decay(const std::string& name) const {
  for (size_t i = 0; i < params_.size(); ++i)
    if (params_[i].first == name) return state_[i].decay;
  throw_error("[optimizer] unknown parameter \"", name, "\"");
}

void Optimizer::begin_step(float lr) {
  check(std::isfinite(lr) && lr >= 0.0f, "[optimizer] learning rate must be finite and >= 0, got ", lr);
  ++step_count_;
}

Tensor Optimizer::grad_of(size_t i) const {
  const auto& [name, p] = params_[i];
  Tensor g = p.grad();
  if (!g.defined()) return g;
  check(g.dtype() == DType::kF32 && g.shape() == p.shape(), "[optimizer] gradient of \"", name,
        "\" must be float32 ", shape_str(p.shape()), ", got ", dtype_name(g.dtype()), " ",
        shape_str(g.shape()));
  return g;
}

float Optimizer::bias_correction1(int64_t t) const {
  return static_cast<float>(1.0 - std::pow(static_cast<double>(options_.beta1), static_cast<double>(t)));
}

float Optimizer::bias_correction2(int64_t t) const {
  return static_cast<float>(1.0 - std::pow(static_cast<double>(options_.beta2), static_cast<double>(t)));
}

void Optimizer::update_ema() {
  if (!has_ema()) return;
  const double t = static_cast<double>(step_count_);
  const float d = static_cast<float>(std::min<double>(options_.ema_decay, (1.0 + t) / (10.0 + t)));
  for (size_t i = 0; i < params_.size(); ++i)
    cpu::ema_update(state_[i].ema.f32(), std::as_const(params_[i].second).f32(), params_[i].second.numel(), d);  // a read: p's bf16 copy stays current
}

void Optimizer::swap_ema() {
  if (!has_ema()) return;
  for (size_t i = 0; i < params_.size(); ++i) {
    float* p = params_[i].second.f32();
    std::swap_ranges(p, p + params_[i].second.numel(), state_[i].ema.f32());
  }
}

std::vector<NamedTensor> Optimizer::state_tensors() const {
  const std::vector<std::string> slots = state_slots(has_ema());
  std::vector<NamedTensor> out;
  out.reserve(slots.size() * params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& name = params_[i].first;
    out.emplace_back(name + slots[0], state_[i].exp_avg);
    out.emplace_back(name + slots[1], state_[i].exp_avg_sq);
    out.emplace_back(name + slots[2],
                     Tensor::from_vector_i32({}, {static_cast<int32_t>(state_[i].step)}));
    if (has_ema()) out.emplace_back(name + slots[3], state_[i].ema);
  }
  return out;
}

void Optimizer::load_state(const std::map<std::string, Tensor>& state, int64_t step) {
  std::vector<std::string> problems;
  auto problem = [&](auto&&... parts) { problems.push_back(detail::concat(parts...)); };
  if (step < 0 || step > std::numeric_limits<int32_t>::max())
    problem("step must be in [0, 2147483647], got ", step);

  std::set<std::string> expected;
  std::vector<int64_t> steps(params_.size(), 0);
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    for (const std::string& slot : state_slots(has_ema())) {
      const std::string key = name + slot;
      expected.insert(key);
      auto it = state.find(key);
      if (it == state.end()) {
        problem("missing \"", key, "\"");
        continue;
      }
      const Tensor& t = it->second;
      const bool is_step = slot == ".step";
      const DType want_dtype = is_step ? DType::kI32 : DType::kF32;
      const Shape want_shape = is_step ? Shape{} : p.shape();
      if (!t.defined() || t.dtype() != want_dtype || t.shape() != want_shape) {
        problem("\"", key, "\" must be ", dtype_name(want_dtype), " ", shape_str(want_shape), ", got ",
                t.defined() ? std::string(dtype_name(t.dtype())) + " " + shape_str(t.shape())
                            : std::string("undefined"));
        continue;
      }
      if (is_step) {
        steps[i] = t.data<int32_t>()[0];
        if (steps[i] < 0 || steps[i] > step)
          problem("\"", key, "\" must be in [0, ", step, "] (the optimizer step), got ", steps[i]);
      }
    }
  }
  for (const auto& [key, t] : state)
    if (!expected.count(key)) problem("unexpected \"", key, "\"");

  if (!problems.empty()) {
    std::ostringstream os;
    os << "[optimizer] load_state (" << name() << "): " << problems.size() << " problem"
       << (problems.size() == 1 ? "" : "s") << ": ";
    for (size_t i = 0; i < problems.size(); ++i) os << (i ? "; " : "") << problems[i];
    throw Error(os.str());
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& name = params_[i].first;
    state_[i].exp_avg.copy_from(state.at(name + ".exp_avg"));
    state_[i].exp_avg_sq.copy_from(state.at(name + ".exp_avg_sq"));
    if (has_ema()) state_[i].ema.copy_from(state.at(name + ".ema"));
    state_[i].step = steps[i];
  }
  step_count_ = step;
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<NamedTensor> params,
                                          const OptimizerOptions& options) {
  if (name == "adamw") return std::make_unique<AdamW>(std::move(params), options);
  if (name == "lamb") return std::make_unique<Lamb>(std::move(params), options);
  throw_error("[optimizer] unknown optimizer \"", name, "\", expected one of \"adamw\", \"lamb\"");
}

}  // namespace perceiver::optim
