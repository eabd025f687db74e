// 2-D relative position logits (formulas in kernels/reference/relative_logits.h): rows split
// across threads, each query row written or reduced with contiguous runs over the key columns.
// Raw pointers, never throw.
#pragma once

#include <cstdint>

namespace perceiver::cpu {

// y (n, h*w, h*w); rw (n, h*w, 2w - 1); rh (n, h*w, 2h - 1).
void relative_logits_forward(float* y, const float* rw, const float* rh, int64_t n, int64_t h, int64_t w);

// drw, drh overwritten with the sums of dy over the keys that read each offset.
void relative_logits_backward(float* drw, float* drh, const float* dy, int64_t n, int64_t h, int64_t w);

}  // namespace perceiver::cpu
