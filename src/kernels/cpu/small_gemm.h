// A GEMM for the products inside attention with small heads (a few dozen rows, columns and inner
// dimension): oneDNN's sgemm costs ~0.7 us of call overhead per product there, more than the
// arithmetic (a 32 x 32 x 32 product is 65 kFLOP). Register-blocked, single-threaded, no packing:
// op(A) is read by broadcasts, so it may be transposed at no cost; B is read by rows.
// Raw pointers, never throw.
#pragma once

#include <cstdint>

namespace perceiver::cpu {

// C (m x n, row stride ldc) = alpha op(A) B + beta C, with op(A) (m x k) = A (row stride lda) or,
// trans_a, A^T for A (k x m, row stride lda); B (k x n, row stride ldb). beta = 0 never reads C.
// Each C element sums its k products in order of k: the result does not depend on m, n or on
// how a caller splits rows.
void small_gemm(bool trans_a, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

#ifdef PERCEIVER_ISA
namespace PERCEIVER_ISA {  // this variant's own, for the kernels compiled beside it
void small_gemm(bool trans_a, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
}  // namespace PERCEIVER_ISA
#endif

}  // namespace perceiver::cpu
