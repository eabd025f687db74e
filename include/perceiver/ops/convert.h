// Element-type conversion between float32 and bfloat16 (round to nearest even).
#pragma once

#include "perceiver/core/tensor.h"

namespace perceiver::ops {

// float32 x -> bfloat16 tensor of the same shape (kernels/cpu/convert.h rounding).
Tensor to_bf16(const Tensor& x);

// to_bf16(w), remembered beside w's data (Tensor::remembered_copy) and returned again by later
// calls until w is next written: a mixed-precision weight is rounded once per update, not once
// per call or per batch slice. The optimizer refreshes a remembered copy in its update pass
// (optim/adamw.cpp). The copy must not be written by callers.
Tensor bf16_copy_of(const Tensor& w);

// bfloat16 x -> float32 (exact); a float32 x is returned as is (shared data).
Tensor to_f32(const Tensor& x);

}  // namespace perceiver::ops
