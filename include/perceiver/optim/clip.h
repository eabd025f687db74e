// Global gradient-norm clipping, torch.nn.utils.clip_grad_norm_ semantics:
//   total = sqrt(sum over parameters of ||grad||^2)      (accumulated in double)
//   if max_norm / (total + 1e-6) < 1: every grad *= max_norm / (total + 1e-6)
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "perceiver/core/tensor.h"

namespace perceiver::optim {

// Returns the total norm before clipping. Parameters without a gradient are skipped. A
// non-finite total norm leaves every gradient untouched and is returned for the caller to act
// on. max_norm must be finite and > 0 (Error otherwise).
float clip_grad_norm(std::vector<std::pair<std::string, Tensor>>& params, float max_norm);

// The total gradient norm alone (same definition, nothing modified).
float grad_norm(const std::vector<std::pair<std::string, Tensor>>& params);

}  // namespace perceiver::optim
