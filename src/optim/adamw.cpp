// AdamW step: one fused kernel call per parameter that has a gradient (formulas in adamw.h).
#include "perceiver/optim/adamw.h"

#include "perceiver/core/dtype.h"

#include "perceiver/core/profiler.h"
#include "kernels/cpu/optimizer.h"

namespace perceiver::optim {

AdamW::AdamW(std::vector<NamedTensor> params, OptimizerOptions options)
    : Optimizer(std::move(params), std::move(options)) {}

void AdamW::step(float lr) {
  profiler::Scope prof("adamw_step");
  begin_step(lr);
  const OptimizerOptions& o = options_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = grad_of(i);
    if (!g.defined()) continue;
    Tensor& p = params_[i].second;
    ParamState& s = state_[i];
    ++s.step;
    // A weight used in bf16 since its last change (mixed precision: ops::bf16_copy_of) gets its
    // new rounding in the same pass, in place when nothing else holds the old one.
    Tensor copy = p.remembered_copy(DType::kBF16);
    if (copy.defined() && copy.storage_holders() > 2)  // more than the slot and `copy`
      copy = Tensor::empty(p.shape(), DType::kBF16);
    cpu::adamw_update(p.f32(), g.f32(), s.exp_avg.f32(), s.exp_avg_sq.f32(), p.numel(), lr, o.beta1,
                      o.beta2, o.eps, s.decay ? o.weight_decay : 0.0f, bias_correction1(s.step),
                      bias_correction2(s.step), copy.defined() ? copy.bf16() : nullptr);
    if (copy.defined()) p.remember_copy(copy, p.write_version());
  }
}

}  // namespace perceiver::optim
