// Fast CPU inverted dropout (torch.nn.Dropout, training mode). The keep/drop decision for
// element i is a counter-based hash of (seed, i), so masks are parallel and reproducible.
#pragma once

#include <cstdint>

namespace perceiver::cpu {

// mask_i = u(seed, i) >= p ? 1 / (1 - p) : 0 with u uniform in [0, 1) (24 bits); y = x * mask.
// y, mask, x (n). p in [0, 1).
void dropout_forward(float* y, float* mask, const float* x, int64_t n, float p, uint64_t seed);
// dx = dy * mask.  dx, dy, mask (n)
void dropout_backward(float* dx, const float* dy, const float* mask, int64_t n);

}  // namespace perceiver::cpu
