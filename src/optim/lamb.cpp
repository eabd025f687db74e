// LAMB step: per parameter with a gradient, pass 1 advances the moments and measures ||p|| and
// ||u||, then pass 2 applies p -= lr * trust_ratio * u (formulas in lamb.h).
#include "perceiver/optim/lamb.h"

#include "perceiver/core/profiler.h"
#include "kernels/cpu/optimizer.h"

namespace perceiver::optim {

Lamb::Lamb(std::vector<NamedTensor> params, OptimizerOptions options)
    : Optimizer(std::move(params), std::move(options)) {}

void Lamb::step(float lr) {
  profiler::Scope prof("lamb_step");
  begin_step(lr);
  const OptimizerOptions& o = options_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = grad_of(i);
    if (!g.defined()) continue;
    Tensor& p = params_[i].second;
    ParamState& s = state_[i];
    ++s.step;
    const float wd = s.decay ? o.weight_decay : 0.0f;
    const float bc1 = bias_correction1(s.step), bc2 = bias_correction2(s.step);
    const cpu::LambNorms norms = cpu::lamb_moments(p.f32(), g.f32(), s.exp_avg.f32(), s.exp_avg_sq.f32(),
                                                   p.numel(), o.beta1, o.beta2, o.eps, wd, bc1, bc2);
    const float ratio = cpu::lamb_trust_ratio(norms);
    cpu::lamb_apply(p.f32(), s.exp_avg.f32(), s.exp_avg_sq.f32(), p.numel(), lr * ratio, o.eps, wd, bc1,
                    bc2);
  }
}

}  // namespace perceiver::optim
