// bf16 x bf16 -> fp32 GEMM (kernels/cpu/gemm.h gemm_bf16). oneDNN 2.6 has no public bf16 GEMM
// call: the oneDNN provider runs the matmul primitive (onednn_matmul.h); OpenBLAS (Debian's has
// no sbgemm) and a CPU without a bf16 matmul widen the operands to fp32 and call gemm().
#include <optional>
#include <string>
#include <vector>

#include "kernels/cpu/convert.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_common.h"
#include "kernels/cpu/onednn_matmul.h"
#include "perceiver/core/gemm_provider.h"

namespace perceiver::cpu {
namespace {

using detail::OmpSingleThread;

// Widen op(A) and op(B) to dense fp32 scratch and run the fp32 GEMM (exact products: bf16
// values are fp32 values; only the accumulation order differs from a native bf16 GEMM).
void gemm_via_f32(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                  const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, float beta,
                  float* c, int64_t ldc) {
  const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k;
  const int64_t b_rows = tb ? n : k, b_cols = tb ? k : n;
  std::vector<float> af(static_cast<size_t>(a_rows * a_cols)), bf(static_cast<size_t>(b_rows * b_cols));
  for (int64_t r = 0; r < a_rows; ++r) bf16_to_f32(a + r * lda, af.data() + r * a_cols, a_cols);
  for (int64_t r = 0; r < b_rows; ++r) bf16_to_f32(b + r * ldb, bf.data() + r * b_cols, b_cols);
  gemm(ta, tb, m, n, k, alpha, af.data(), a_cols, bf.data(), b_cols, beta, c, ldc);
}

void gemm_onednn_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                      const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, float beta,
                      float* c, int64_t ldc) {
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
