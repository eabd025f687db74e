// Element-type conversion between float32 and bfloat16 (round to nearest even).
#pragma once

#include "perceiver/core/tensor.h"

namespace perceiver::ops {

// float32 x -> bfloat16 tensor of the same shape (kernels/cpu/convert.h rounding).
Tensor to_bf16(const Tensor& x);

// bfloat16 x -> float32 (exact); a float32 x is returned as is (shared data).
Tensor to_f32(const Tensor& x);

}  // namespace perceiver::ops
