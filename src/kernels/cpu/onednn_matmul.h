// oneDNN matmul primitive behind the row-major GEMM entry points (kernels/cpu/gemm.cpp fp32,
// gemm_bf16.cpp bf16): the memory descriptors carry the row-major strides (a transposed operand
// is a stride swap, no copy), alpha is an output scale and beta a sum post-op. Primitives are
// cached per thread by type, shape, strides, alpha, beta and OpenMP team size (creating one
// costs far more than a small GEMM). Internal to kernels/cpu.
#pragma once

#include <cstdint>
#include <string>

namespace perceiver::cpu::detail {

enum class MatmulType { kF32, kBF16 };  // input type; C and accumulation are always fp32

// C = alpha op(A) op(B) + beta C with A, B of `type` (float or uint16_t bf16 bits). Runs on the
// calling thread's OpenMP team size (the caller scopes it). Returns false, touching nothing,
// where oneDNN has only its reference implementation for this case (the caller falls back).
bool onednn_matmul(MatmulType type, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                   const void* a, int64_t lda, const void* b, int64_t ldb, float beta, float* c,
                   int64_t ldc);

// oneDNN's implementation name for this case with dense operands (e.g. "brg:avx512_core_bf16"),
// or "none".
std::string onednn_matmul_impl(MatmulType type, bool ta, bool tb, int64_t m, int64_t n, int64_t k);

}  // namespace perceiver::cpu::detail
