// Layer normalisation kernels: two-pass mean/variance per row (rows stay in L1), AVX-512 with
// masked tails, rows split across threads; backward reduces dw/db from per-chunk partials.
#include "kernels/cpu/layer_norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/simd_avx512.h"
#include "perceiver/core/parallel.h"

// Compiled once per ISA variant (CMakeLists.txt, kernels/cpu/isa_dispatch.cpp).
namespace perceiver::cpu::PERCEIVER_ISA {
namespace {

constexpr int64_t kGrainElems = 1 << 15;  // elements per thread before splitting pays off

int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, kGrainElems / std::max<int64_t>(cols, 1)); }

#if defined(__AVX512F__)

void forward_row(float* y, float* mean_out, float* rstd_out, const float* x, const float* w,
                 const float* b, int64_t C, float eps) {
  __m512 acc = _mm512_setzero_ps();
  simd::loop(C, [&](int64_t i, __mmask16 m) { acc = _mm512_add_ps(acc, simd::load(x + i, m)); });
  const float mean = _mm512_reduce_add_ps(acc) / static_cast<float>(C);
  const __m512 vmean = _mm512_set1_ps(mean);
  acc = _mm512_setzero_ps();
  simd::loop(C, [&](int64_t i, __mmask16 m) {
    const __m512 d = _mm512_maskz_sub_ps(m, simd::load(x + i, m), vmean);
    acc = _mm512_fmadd_ps(d, d, acc);
  });
  const float var = _mm512_reduce_add_ps(acc) / static_cast<float>(C);
  const float rstd = 1.0f / std::sqrt(var + eps);
  const __m512 vrstd = _mm512_set1_ps(rstd);
  simd::loop(C, [&](int64_t i, __mmask16 m) {
    const __m512 xhat = _mm512_mul_ps(_mm512_sub_ps(simd::load(x + i, m), vmean), vrstd);
    simd::store(y + i, _mm512_fmadd_ps(xhat, simd::load(w + i, m), simd::load(b + i, m)), m);
  });
  *mean_out = mean;
  *rstd_out = rstd;
}

// dw and db point into padded per-thread partials (a whole number of 16-float vectors), so they
// are updated with full-width loads and stores: a masked tail store followed by the next row's
// load of the same address defeats store-to-load forwarding (it made C = 261 rows ~35% slower).
// The first pass stores g = dy * w (in dx; the ragged last vector in a local buffer, for the same
// forwarding reason), so the second pass subtracts the very same rounded g (C == 1 then gives
// dx == 0 exactly, whatever FMA contraction the compiler applies).
void backward_row(float* dx, float* dw, float* db, const float* dy, const float* x,
                  const float* w, float mean, float rstd, int64_t C) {
  const __m512 vmean = _mm512_set1_ps(mean), vrstd = _mm512_set1_ps(rstd);
  __m512 sg = _mm512_setzero_ps(), sgx = _mm512_setzero_ps();
  alignas(64) float g_tail[16];
  simd::loop(C, [&](int64_t i, __mmask16 m) {
    const __m512 d = simd::load(dy + i, m);  // 0 in the masked-off lanes
    const __m512 xhat = _mm512_mul_ps(_mm512_maskz_sub_ps(m, simd::load(x + i, m), vmean), vrstd);
    const __m512 g = _mm512_mul_ps(d, simd::load(w + i, m));
    if (m == 0xFFFF)
      _mm512_storeu_ps(dx + i, g);
    else
      _mm512_storeu_ps(g_tail, g);
    sg = _mm512_add_ps(sg, g);
    sgx = _mm512_fmadd_ps(g, xhat, sgx);
    _mm512_storeu_ps(dw + i, _mm512_fmadd_ps(d, xhat, _mm512_loadu_ps(dw + i)));  // padded
    _mm512_storeu_ps(db + i, _mm512_add_ps(d, _mm512_loadu_ps(db + i)));
  });
  const __m512 g_mean = _mm512_set1_ps(_mm512_reduce_add_ps(sg) / static_cast<float>(C));
  const __m512 gx_mean = _mm512_set1_ps(_mm512_reduce_add_ps(sgx) / static_cast<float>(C));
  simd::loop(C, [&](int64_t i, __mmask16 m) {
    const __m512 xhat = _mm512_mul_ps(_mm512_sub_ps(simd::load(x + i, m), vmean), vrstd);
    const __m512 g = m == 0xFFFF ? _mm512_loadu_ps(dx + i) : _mm512_loadu_ps(g_tail);
    const __m512 t = _mm512_fnmadd_ps(xhat, gx_mean, _mm512_sub_ps(g, g_mean));
    simd::store(dx + i, _mm512_mul_ps(t, vrstd), m);
  });
}

#else  // portable path

void forward_row(float* y, float* mean_out, float* rstd_out, const float* x, const float* w,
                 const float* b, int64_t C, float eps) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < C; ++i) s += x[i];
  const float mean = s / static_cast<float>(C);
  float v = 0;
#pragma omp simd reduction(+ : v)
  for (int64_t i = 0; i < C; ++i) v += (x[i] - mean) * (x[i] - mean);
  const float rstd = 1.0f / std::sqrt(v / static_cast<float>(C) + eps);
  for (int64_t i = 0; i < C; ++i) y[i] = (x[i] - mean) * rstd * w[i] + b[i];
  *mean_out = mean;
  *rstd_out = rstd;
}

void backward_row(float* dx, float* dw, float* db, const float* dy, const float* x,
                  const float* w, float mean, float rstd, int64_t C) {
  float sg = 0, sgx = 0;
#pragma omp simd reduction(+ : sg, sgx)
  for (int64_t i = 0; i < C; ++i) {
    const float xhat = (x[i] - mean) * rstd;
    const float g = dy[i] * w[i];
    dx[i] = g;  // reused below: the same rounded g is subtracted
    sg += g;
    sgx += g * xhat;
    dw[i] += dy[i] * xhat;
    db[i] += dy[i];
  }
  const float g_mean = sg / static_cast<float>(C), gx_mean = sgx / static_cast<float>(C);
  for (int64_t i = 0; i < C; ++i) {
    const float xhat = (x[i] - mean) * rstd;
    dx[i] = (dx[i] - g_mean - xhat * gx_mean) * rstd;
  }
}

#endif

}  // namespace

void layer_norm_forward(float* y, float* mean, float* rstd, const float* x, const float* w,
                        const float* b, int64_t rows, int64_t cols, float eps) {
  parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      forward_row(y + r * cols, mean + r, rstd + r, x + r * cols, w, b, cols, eps);
  });
}

void layer_norm_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                         const float* w, const float* mean, const float* rstd, int64_t rows,
                         int64_t cols) {
  // One chunk per thread (never more chunks than the grain allows); chunk c owns rows
  // [rows*c/n, rows*(c+1)/n) and its own dw/db partial, summed afterwards in chunk order.
  const int64_t grain = row_grain(cols);
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(num_threads(), rows / grain));
  // partial dw and db per chunk, each padded to a whole number of 16-float vectors
  const int64_t stride = (cols + 15) / 16 * 16;
  std::vector<float> partial(static_cast<size_t>(2 * chunks * stride), 0.0f);
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      float* pw = partial.data() + 2 * c * stride;
      float* pb = pw + stride;
      for (int64_t r = rows * c / chunks; r < rows * (c + 1) / chunks; ++r)
        backward_row(dx + r * cols, pw, pb, dy + r * cols, x + r * cols, w, mean[r], rstd[r], cols);
    }
  });
  std::copy(partial.begin(), partial.begin() + cols, dw);
  std::copy(partial.begin() + stride, partial.begin() + stride + cols, db);
  for (int64_t c = 1; c < chunks; ++c) {
    const float* pw = partial.data() + 2 * c * stride;
    const float* pb = pw + stride;
    for (int64_t i = 0; i < cols; ++i) dw[i] += pw[i];
    for (int64_t i = 0; i < cols; ++i) db[i] += pb[i];
  }
}

}  // namespace perceiver::cpu::PERCEIVER_ISA
