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

// Drop path (stochastic depth): dropout of whole examples along x's first dimension, as timm's
// drop_path on a residual branch. x (B, ...) float32, rank >= 1.
struct DropPathOut {
  Tensor y;     // x[b] * keep[b]
  Tensor keep;  // (B): 0 or 1 / (1 - p); saved for backward
};
// p in [0, 1). With p == 0 returns y = x (shared), an undefined keep, and draws nothing.
DropPathOut drop_path(const Tensor& x, float p, Rng& rng);
// dx[b] = dy[b] * keep[b]
Tensor drop_path_backward(const Tensor& dy, const Tensor& keep);

}  // namespace perceiver::ops
