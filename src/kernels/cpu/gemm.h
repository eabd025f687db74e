// The one GEMM entry point (row-major, BLAS semantics): C = alpha * op(A) op(B) + beta * C,
// op(A) m x k, op(B) k x n. Dispatches to the provider chosen in perceiver/core/gemm_provider.h.
// Kernels never throw; callers (ops/) validate shapes. beta == 0 never reads C. A GEMM under
// 2^20 multiply-adds runs on one thread (threading it costs more than it saves here).
#pragma once

#include <cstdint>

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
