// Inverted dropout (torch.nn.Dropout in training mode).
#pragma once

#include "perceiver/core/random.h"
#include "perceiver/core/tensor.h"

namespace perceiver::ops {

struct DropoutOut {
  Tensor y;     // x * mask
  Tensor mask;  // 0 or 1 / (1 - p), same shape as x; saved for backward (dx = dy * mask)
};
// p in [0, 1). With p == 0 returns y = x (shared) and an undefined mask.
DropoutOut dropout(const Tensor& x, float p, Rng& rng);

}  // namespace perceiver::ops
