// Global gradient-norm clipping (formula in clip.h).
#include "perceiver/optim/clip.h"

#include <cmath>

#include "kernels/cpu/optimizer.h"

namespace perceiver::optim {

float grad_norm(const std::vector<std::pair<std::string, Tensor>>& params) {
  double sq = 0;
  for (const auto& [name, p] : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    check(g.dtype() == DType::kF32, "[clip_grad_norm] gradient of \"", name, "\" must be float32, got ",
          dtype_name(g.dtype()));
    sq += cpu::sum_squares_f64(g.f32(), g.numel());
  }
  return static_cast<float>(std::sqrt(sq));
}

float clip_grad_norm(std::vector<std::pair<std::string, Tensor>>& params, float max_norm) {
  check(std::isfinite(max_norm) && max_norm > 0.0f, "[clip_grad_norm] max_norm must be finite and > 0, got ",
        max_norm);
  const float total = grad_norm(params);
  if (!std::isfinite(total)) return total;
  const float scale = static_cast<float>(static_cast<double>(max_norm) / (static_cast<double>(total) + 1e-6));
  if (scale >= 1.0f) return total;
  for (auto& [name, p] : params) {
    Tensor g = p.grad();
    if (g.defined()) cpu::scale_inplace(g.f32(), g.numel(), scale);
  }
  return total;
}

}  // namespace perceiver::optim
