// Linear map and batched matrix multiply (all GEMMs go through kernels/cpu/gemm).
#pragma once

#include "perceiver/core/tensor.h"

namespace perceiver::ops {

// y = x @ w^T + b  (torch.nn.Linear, HF weight layout).
// x (..., Cin), w (Cout, Cin), b (Cout) or undefined -> y (..., Cout), all float32; w may be
// bfloat16 (inference, mixed-precision training): x, float32 or bfloat16, is then rounded to
// bf16 and the GEMM accumulates in fp32 (cpu::gemm_bf16).
// linear_backward with bf16 w (mixed precision) needs bf16 x too: dy is rounded to bf16 and dx,
// dw are bf16 GEMMs with fp32 accumulation (fp32 results); db is summed from the fp32 dy.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);

struct LinearGrads {
  Tensor dx;  // (..., Cin)   = dy @ w
  Tensor dw;  // (Cout, Cin)  = sum over rows of dy^T x
  Tensor db;  // (Cout)       = sum over rows of dy
};
LinearGrads linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w, bool need_dx,
                            bool need_dw, bool need_db);

// Batched matmul: a (B, P, Q) or (P, Q), b likewise; op(a) @ op(b) where op transposes the last
// two dims when the flag is set. Batch dims must match (or one side is rank 2 and is shared).
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);

}  // namespace perceiver::ops
