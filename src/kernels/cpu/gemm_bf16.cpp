// bf16 x bf16 -> fp32 GEMM (kernels/cpu/gemm.h gemm_bf16). oneDNN 2.6 has no public bf16 GEMM
// call: the oneDNN provider runs the matmul primitive (onednn_matmul.h); OpenBLAS (Debian's has
// no sbgemm) and a CPU without a bf16 matmul widen the operands to fp32 and call gemm().
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "kernels/cpu/convert.h"
#include "kernels/cpu/copy_rows.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_common.h"
#include "kernels/cpu/onednn_matmul.h"
#include "perceiver/core/gemm_provider.h"

namespace perceiver::cpu {
namespace {

using detail::OmpSingleThread;

// Per-thread scratch, three slots per element type (reused: fresh pages are expensive here).
template <typename T>
T* thread_buffer(size_t n, int slot) {
  thread_local std::vector<T> bufs[3];
  if (bufs[slot].size() < n) bufs[slot].resize(n);
  return bufs[slot].data();
}

// Widen op(A) and op(B) to dense fp32 scratch and run the fp32 GEMM (exact products: bf16
// values are fp32 values; only the accumulation order differs from a native bf16 GEMM).
void gemm_via_f32(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                  const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, float beta,
                  float* c, int64_t ldc) {
  const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k;
  const int64_t b_rows = tb ? n : k, b_cols = tb ? k : n;
  float* af = thread_buffer<float>(static_cast<size_t>(a_rows * a_cols), 0);
  float* bf = thread_buffer<float>(static_cast<size_t>(b_rows * b_cols), 1);
  for (int64_t r = 0; r < a_rows; ++r) bf16_to_f32(a + r * lda, af + r * a_cols, a_cols);
  for (int64_t r = 0; r < b_rows; ++r) bf16_to_f32(b + r * ldb, bf + r * b_cols, b_cols);
  gemm(ta, tb, m, n, k, alpha, af, a_cols, bf, b_cols, beta, c, ldc);
}

// oneDNN's bf16 matmul (brgemm, AMX or AVX512-BF16) has a fixed cost of ~2 us per call, more than
// a product of 2^16 multiply-adds takes in fp32 (32 x 32 x 32: 2.3 us bf16 vs 1.1 us fp32 on this
// machine); smaller products are widened and run in fp32 (same products, fp32 accumulation).
constexpr int64_t kMinBf16Macs = int64_t{1} << 16;

// And it runs 3-20x slower when an operand or C is strided (ld larger than the row: 32 x 784 x 128
// with a strided A 185 us vs 17 us dense, docs/BENCHMARKS.md), so strided operands are copied into
// dense per-thread buffers first, and a strided C receives the product through a dense buffer.

void gemm_onednn_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                      const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, float beta,
                      float* c, int64_t ldc) {
  if (m * n * k <= kMinBf16Macs) {
    gemm_via_f32(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k;
  const int64_t b_rows = tb ? n : k, b_cols = tb ? k : n;
  if (lda != a_cols) {
    uint16_t* dense = thread_buffer<uint16_t>(static_cast<size_t>(a_rows * a_cols), 0);
    copy_rows(dense, a_cols, a, lda, a_rows, a_cols);
    a = dense;
    lda = a_cols;
  }
  if (ldb != b_cols) {
    uint16_t* dense = thread_buffer<uint16_t>(static_cast<size_t>(b_rows * b_cols), 1);
    copy_rows(dense, b_cols, b, ldb, b_rows, b_cols);
    b = dense;
    ldb = b_cols;
  }
  if (ldc != n) {  // C = (alpha A B) + beta C through a dense m x n product
    float* prod = thread_buffer<float>(static_cast<size_t>(m * n), 2);
    gemm_onednn_bf16(ta, tb, m, n, k, alpha, a, lda, b, ldb, 0.0f, prod, n);
    if (beta == 0.0f) {
      copy_rows(c, ldc, prod, n, m, n);
      return;
    }
    for (int64_t i = 0; i < m; ++i) {
      float* crow = c + i * ldc;
      const float* prow = prod + i * n;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) crow[j] = prow[j] + beta * crow[j];
    }
    return;
  }
  // One thread inside a parallel region too, so that the cache key and oneDNN's plan (made for
  // the team size at creation) both say 1 thread: oneDNN runs nested calls on one thread.
  std::optional<OmpSingleThread> one;
  if (detail::serial_gemm(m, n, k) || in_parallel_region()) one.emplace();
  if (!detail::onednn_matmul(detail::MatmulType::kBF16, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c,
                             ldc))
    gemm_via_f32(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Loops in fp32 (each product is exact in fp32), i-p-j or dot-product order as in gemm_naive.
void gemm_naive_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                     const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, float beta,
                     float* c, int64_t ldc) {
  auto f = [](uint16_t h) {
    float v;
    bf16_to_f32(&h, &v, 1);
    return v;
  };
  for (int64_t i = 0; i < m; ++i) {
    float* crow = c + i * ldc;
    for (int64_t j = 0; j < n; ++j) {
      float acc = 0.0f;
      for (int64_t p = 0; p < k; ++p)
        acc += f(ta ? a[p * lda + i] : a[i * lda + p]) * f(tb ? b[j * ldb + p] : b[p * ldb + j]);
      crow[j] = alpha * acc + (beta == 0.0f ? 0.0f : beta * crow[j]);
    }
  }
}

}  // namespace

void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, float beta,
               float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) {
    detail::scale_c(m, n, beta, c, ldc);
    return;
  }
  switch (gemm_provider()) {
    case GemmProvider::kOneDNN:
      gemm_onednn_bf16(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      break;
    case GemmProvider::kOpenBLAS:  // Debian's OpenBLAS 0.3.21 is built without sbgemm
      gemm_via_f32(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      break;
    case GemmProvider::kNaive:
      gemm_naive_bf16(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      break;
  }
}

std::string gemm_bf16_impl(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k) {
  const std::string impl = detail::onednn_matmul_impl(detail::MatmulType::kBF16, trans_a, trans_b, m, n, k);
  return impl == "none" ? "fp32 fallback" : impl;
}

}  // namespace perceiver::cpu
