// Provider dispatch for the row-major GEMM: oneDNN (default: the matmul primitive for
// latent-sized products, dnnl_sgemm otherwise), OpenBLAS cblas_sgemm
// (thread count follows perceiver::num_threads()), or a plain loop nest (naive). GEMMs too
// small to thread well run on one thread.
#include "kernels/cpu/gemm.h"

#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "kernels/cpu/gemm_common.h"
#include "kernels/cpu/onednn_matmul.h"
#include "perceiver/core/gemm_provider.h"
#include "perceiver/core/parallel.h"

namespace perceiver::cpu {
namespace {

using detail::OmpSingleThread;
using detail::scale_c;
using detail::set_openblas_threads;

// Which oneDNN call runs a GEMM. The matmul primitive runs latent-sized products up to ~30%
// faster than dnnl_sgemm on 2 threads (512 x 1024 x 1024: 479 vs 368 GFLOP/s; equal or a few %
// better on one thread), but dnnl_sgemm stays ahead for tall input projections (50,176 rows), and
// on the Fashion-MNIST model's small, transposed-A backward GEMMs the primitive made a training
// step ~10% slower (bench_train_step, docs/BENCHMARKS.md). So: the primitive only for
// non-transposed A with 256 <= m <= 8,192 rows and n, k >= 256.
bool use_matmul_primitive(bool ta, int64_t m, int64_t n, int64_t k) {
  return !ta && m >= 256 && m <= 8192 && n >= 256 && k >= 256;
}

void gemm_onednn(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                 bool serial) {
  // one thread inside a parallel region too: the matmul primitive is planned for the team size
  std::optional<OmpSingleThread> one;
  if (serial || in_parallel_region()) one.emplace();
  if (use_matmul_primitive(ta, m, n, k) && detail::onednn_matmul(detail::MatmulType::kF32, ta, tb, m, n, k, alpha,
                                                   a, lda, b, ldb, beta, c, ldc))
    return;
  const dnnl_status_t st =
      dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (st != dnnl_success) {  // internal invariant: ops/ validated every dimension
    std::fprintf(stderr, "[gemm] dnnl_sgemm failed with status %d (m=%lld n=%lld k=%lld)\n",
                 static_cast<int>(st), static_cast<long long>(m), static_cast<long long>(n),
                 static_cast<long long>(k));
    std::abort();
  }
}

void gemm_openblas(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                   const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                   int64_t ldc, bool serial) {
  if (!in_parallel_region()) set_openblas_threads(serial ? 1 : num_threads());
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c,
              static_cast<blasint>(ldc));
}

// Straightforward loops: the unit-stride loop innermost (i-p-j when B is not transposed, an
// i-j-p dot product when it is). A reference-quality fallback, not a fast path.
void gemm_naive(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  scale_c(m, n, beta, c, ldc);
  auto a_at = [&](int64_t i, int64_t p) { return ta ? a[p * lda + i] : a[i * lda + p]; };
  for (int64_t i = 0; i < m; ++i) {
    float* crow = c + i * ldc;
    if (!tb) {
      for (int64_t p = 0; p < k; ++p) {
        const float s = alpha * a_at(i, p);
        const float* brow = b + p * ldb;
        for (int64_t j = 0; j < n; ++j) crow[j] += s * brow[j];
      }
    } else {
      for (int64_t j = 0; j < n; ++j) {
        const float* brow = b + j * ldb;
        float acc = 0.0f;
        for (int64_t p = 0; p < k; ++p) acc += a_at(i, p) * brow[p];
        crow[j] += alpha * acc;
      }
    }
  }
}

}  // namespace

SerialGemmScope::SerialGemmScope() {
  if (gemm_provider() == GemmProvider::kOpenBLAS && !in_parallel_region()) set_openblas_threads(1);
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
          int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) {  // C = beta * C; BLAS libraries may reject lda = 0 here
    scale_c(m, n, beta, c, ldc);
    return;
  }
  const bool serial = detail::serial_gemm(m, n, k);
  switch (gemm_provider()) {
    case GemmProvider::kOneDNN:
      gemm_onednn(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, serial);
      break;
    case GemmProvider::kOpenBLAS:
      gemm_openblas(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, serial);
      break;
    case GemmProvider::kNaive:
      gemm_naive(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      break;
  }
}

void gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, int64_t stride_a, const float* b, int64_t ldb,
                  int64_t stride_b, float beta, float* c, int64_t ldc, int64_t stride_c,
                  int64_t batch) {
  auto one = [&](int64_t i) {
    gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
         c + i * stride_c, ldc);
  };
  const int threads = static_cast<int>(std::min<int64_t>(num_threads(), batch));
  const bool small = double(m) * double(n) * double(k) <= detail::kSmallGemmWork;
  if (threads < 2 || !small || in_parallel_region()) {
    for (int64_t i = 0; i < batch; ++i) one(i);
    return;
  }
  SerialGemmScope serial;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < batch; ++i) one(i);
}

}  // namespace perceiver::cpu
