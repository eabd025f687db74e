// Compute precision. kF32: everything in float32. kBF16: the GEMMs of linear layers and
// attention take bfloat16 operands and accumulate in float32 on AVX512-BF16; layer norm, softmax,
// GELU, residuals and the loss stay float32. Inference: weights converted once, activations at
// each GEMM, stored activations float32. Mixed-precision training (train.precision "bf16"):
// float32 master weights rounded per call, the operands a backward needs saved in bf16, the
// backward products in bf16 too; gradients and optimizer state float32. GEMMs outside Linear and
// attention stay float32 (the masked-LM embedding decoder, the conv preprocessors).
#pragma once

#include <cstdint>
#include <string>

namespace perceiver {

enum class Precision : uint8_t { kF32, kBF16 };

// "f32" | "fp32" | "float32" -> kF32, "bf16" | "bfloat16" -> kBF16; throws
// Error("[precision] unknown precision 'x', expected f32 or bf16").
Precision parse_precision(const std::string& name);
const char* precision_name(Precision p);  // "f32" | "bf16"

}  // namespace perceiver
