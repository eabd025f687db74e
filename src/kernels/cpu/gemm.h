// The one GEMM entry point (row-major, BLAS semantics): C = alpha * op(A) op(B) + beta * C,
// op(A) m x k, op(B) k x n. Dispatches to the provider chosen in perceiver/core/gemm_provider.h.
// Kernels never throw; callers (ops/) validate shapes. beta == 0 never reads C. A GEMM under
// 2^20 multiply-adds runs on one thread (threading it costs more than it saves here).
#pragma once

#include <cstdint>
#include <string>

namespace perceiver::cpu {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
          int64_t ldc);

// batch independent GEMMs; matrix i uses a + i*stride_a, b + i*stride_b, c + i*stride_c
// (a stride of 0 shares one matrix). Small matrices outside a parallel region are spread over
// the OpenMP threads one whole GEMM each; otherwise each GEMM uses the threads itself.
void gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, int64_t stride_a, const float* b, int64_t ldb,
                  int64_t stride_b, float beta, float* c, int64_t ldc, int64_t stride_c,
                  int64_t batch);

// The same GEMM with A and B in bfloat16 (uint16_t bits, kernels/cpu/convert.h) and fp32 C and
// accumulation. oneDNN: the matmul primitive (AVX512-BF16 vdpbf16ps where the CPU has it; one
// primitive per shape, cached per thread); naive: loops. OpenBLAS (Debian's is built without
// sbgemm), and oneDNN where it has no bf16 matmul for this CPU, widen the operands to fp32 and
// run gemm(): same products, fp32 speed.
void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, float beta,
               float* c, int64_t ldc);

// Name of the oneDNN implementation that runs a bf16 GEMM of this shape (for benchmarks and
// tests: "brg:avx512_core_bf16" means native bf16 instructions), or "fp32 fallback".
std::string gemm_bf16_impl(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k);

// Construct (outside any parallel region) before an OpenMP region whose threads each call
// gemm(): keeps every provider single-threaded inside it. oneDNN (OpenMP runtime) already runs
// one thread inside a parallel region; OpenBLAS (own pthread pool) is told to use one thread.
// The next gemm() outside a parallel region restores perceiver::num_threads().
class SerialGemmScope {
 public:
  SerialGemmScope();
  SerialGemmScope(const SerialGemmScope&) = delete;
  SerialGemmScope& operator=(const SerialGemmScope&) = delete;
};

}  // namespace perceiver::cpu
