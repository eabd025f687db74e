// Small register-blocked GEMM (kernels/cpu/small_gemm.h). AVX-512: tiles of R rows x NV vectors
// of 16 columns held in registers (R * NV <= 24 accumulators), one broadcast of op(A) and NV loads
// of B per step of k. Portable: a row at a time over panels of 64 columns, vectorised by GCC.
#include "kernels/cpu/small_gemm.h"

#include <algorithm>
#include <utility>

#include "kernels/cpu/simd_avx512.h"

// Compiled once per ISA variant (CMakeLists.txt, kernels/cpu/isa_dispatch.cpp).
namespace perceiver::cpu::PERCEIVER_ISA {
namespace {

constexpr int64_t kPanel = 64;  // columns per panel (4 vectors)

#if defined(__AVX512F__)

// C rows [0, R), columns [0, 16 NV) (the last vector masked by `last`) of alpha op(A) B + beta C.
// op(A)(r, p) = a[r * sa_row + p * sa_k].
template <int R, int NV>
void tile(int64_t k, float alpha, const float* a, int64_t sa_row, int64_t sa_k, const float* b, int64_t ldb,
          float beta, float* c, int64_t ldc, __mmask16 last) {
  __m512 acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t p = 0; p < k; ++p, a += sa_k, b += ldb) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV - 1; ++v) bv[v] = _mm512_loadu_ps(b + 16 * v);
    bv[NV - 1] = _mm512_maskz_loadu_ps(last, b + 16 * (NV - 1));
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * sa_row]);
  #pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __mmask16 mk = v == NV - 1 ? last : static_cast<__mmask16>(0xFFFF);
      float* cp = c + r * ldc + 16 * v;
      __m512 x = _mm512_mul_ps(acc[r][v], va);
      if (beta != 0.0f) x = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mk, cp), x);
      _mm512_mask_storeu_ps(cp, mk, x);
    }
}

using TileFn = void (*)(int64_t, float, const float*, int64_t, int64_t, const float*, int64_t, float, float*,
                        int64_t, __mmask16);

// Rows per full tile for NV vectors (accumulators + NV B vectors + a broadcast fit 32 registers).
constexpr int kMaxRows[5] = {0, 12, 12, 8, 6};

template <int NV, int... Rs>
constexpr TileFn tile_for(int rows, std::integer_sequence<int, Rs...>) {
  constexpr TileFn table[] = {tile<Rs + 1, NV>...};
  return table[rows - 1];
}

template <int NV>
TileFn tile_fn(int rows) {
  return tile_for<NV>(rows, std::make_integer_sequence<int, kMaxRows[NV]>{});
}

TileFn pick_tile(int nv, int rows) {
  switch (nv) {
    case 1: return tile_fn<1>(rows);
    case 2: return tile_fn<2>(rows);
    case 3: return tile_fn<3>(rows);
    default: return tile_fn<4>(rows);
  }
}

#endif  // __AVX512F__

}  // namespace

void small_gemm(bool trans_a, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  const int64_t sa_row = trans_a ? 1 : lda, sa_k = trans_a ? lda : 1;
#if defined(__AVX512F__)
  for (int64_t j0 = 0; j0 < n; j0 += kPanel) {
    const int64_t w = std::min(kPanel, n - j0);
    const int nv = static_cast<int>((w + 15) / 16);
    const __mmask16 last = static_cast<__mmask16>(0xFFFFu >> (16 * nv - w));
    const int full = kMaxRows[nv];
    const TileFn body = pick_tile(nv, full);
    int64_t i0 = 0;
    for (; i0 + full <= m; i0 += full)
      body(k, alpha, a + i0 * sa_row, sa_row, sa_k, b + j0, ldb, beta, c + i0 * ldc + j0, ldc, last);
    if (i0 < m)
      pick_tile(nv, static_cast<int>(m - i0))(k, alpha, a + i0 * sa_row, sa_row, sa_k, b + j0, ldb, beta,
                                              c + i0 * ldc + j0, ldc, last);
  }
#else
  float acc[kPanel];
  for (int64_t j0 = 0; j0 < n; j0 += kPanel) {
    const int64_t w = std::min(kPanel, n - j0);
    for (int64_t i = 0; i < m; ++i) {
      std::fill(acc, acc + w, 0.0f);
      const float* ai = a + i * sa_row;
      const float* bp = b + j0;
      for (int64_t p = 0; p < k; ++p, bp += ldb) {
        const float x = ai[p * sa_k];
#pragma omp simd
        for (int64_t j = 0; j < w; ++j) acc[j] += x * bp[j];
      }
      float* ci = c + i * ldc + j0;
      if (beta == 0.0f) {
#pragma omp simd
        for (int64_t j = 0; j < w; ++j) ci[j] = alpha * acc[j];
      } else {
#pragma omp simd
        for (int64_t j = 0; j < w; ++j) ci[j] = alpha * acc[j] + beta * ci[j];
      }
    }
  }
#endif
}

}  // namespace perceiver::cpu::PERCEIVER_ISA
