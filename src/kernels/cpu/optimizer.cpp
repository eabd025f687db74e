// Fused optimizer update kernels; formulas in optimizer.h. Work is split into fixed blocks
// (for_blocks); each block runs an element range kernel: AVX-512 when the build targets it
// (GCC will not auto-vectorise std::sqrt without -fno-math-errno, which the project does not
// set), else a scalar loop. The two paths may differ in the last bit (FMA use, order of the
// double-precision norm sums); each is deterministic. Reductions add per-block partials in
// block order, so results do not depend on the thread count.
#include "kernels/cpu/optimizer.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/simd_avx512.h"
#include "perceiver/core/parallel.h"

// Compiled once per ISA variant (CMakeLists.txt, kernels/cpu/isa_dispatch.cpp).
namespace perceiver::cpu::PERCEIVER_ISA {

void f32_to_bf16(const float* x, uint16_t* y, int64_t n);  // this variant's (convert.cpp)

namespace {

// Fixed block size: the unit of parallel work and of reduction partials (128 KiB of floats).
constexpr int64_t kBlock = 32768;

int64_t num_blocks(int64_t n) { return (n + kBlock - 1) / kBlock; }

// fn(block, begin, end) over [0, n) in kBlock pieces, blocks spread over threads.
template <typename Fn>
void for_blocks(int64_t n, Fn&& fn) {
  parallel_for(num_blocks(n), 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) fn(b, b * kBlock, std::min(n, (b + 1) * kBlock));
  });
}

// Moment EMA coefficients: m = beta1*m + c1*g, v = beta2*v + (c2*g)*g.
struct Moments {
  float beta1, c1, beta2, c2;
  Moments(float b1, float b2) : beta1(b1), c1(1.0f - b1), beta2(b2), c2(1.0f - b2) {}
};

// LAMB direction u = (m*inv_bc1) / (sqrt(v*inv_bc2) + eps) + wd*p.
struct Direction {
  float inv_bc1, inv_bc2, eps, wd;
};

#if defined(__AVX512F__)
using simd::load;
using simd::store;

inline __m512 ema(__m512 beta, __m512 state, __m512 c, __m512 x) {
  return _mm512_fmadd_ps(beta, state, _mm512_mul_ps(c, x));
}
inline __m512 direction(__m512 p, __m512 m, __m512 v, __m512 ib1, __m512 ib2, __m512 eps, __m512 wd) {
  const __m512 denom = _mm512_add_ps(_mm512_sqrt_ps(_mm512_mul_ps(v, ib2)), eps);
  return _mm512_fmadd_ps(wd, p, _mm512_div_ps(_mm512_mul_ps(m, ib1), denom));
}
// acc += x*x for the 16 lanes of x, in double (two 8-lane halves).
inline void add_squares(__m512d& lo, __m512d& hi, __m512 x) {
  const __m512d a = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
  const __m512d b = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
  lo = _mm512_fmadd_pd(a, a, lo);
  hi = _mm512_fmadd_pd(b, b, hi);
}
#endif

void adamw_range(float* p, const float* g, float* m, float* v, int64_t n, Moments mo, float decay,
                 float step_size, float inv_sqrt_bc2, float eps) {
#if defined(__AVX512F__)
  const __m512 b1 = _mm512_set1_ps(mo.beta1), c1 = _mm512_set1_ps(mo.c1);
  const __m512 b2 = _mm512_set1_ps(mo.beta2), c2 = _mm512_set1_ps(mo.c2);
  const __m512 dec = _mm512_set1_ps(decay), ss = _mm512_set1_ps(step_size);
  const __m512 isb = _mm512_set1_ps(inv_sqrt_bc2), ep = _mm512_set1_ps(eps);
  simd::loop(n, [&](int64_t i, __mmask16 k) {
    const __m512 gi = load(g + i, k);
    const __m512 mi = ema(b1, load(m + i, k), c1, gi);
    const __m512 vi = ema(b2, load(v + i, k), _mm512_mul_ps(c2, gi), gi);
    store(m + i, mi, k);
    store(v + i, vi, k);
    const __m512 denom = _mm512_fmadd_ps(_mm512_sqrt_ps(vi), isb, ep);
    const __m512 upd = _mm512_div_ps(_mm512_mul_ps(ss, mi), denom);
    store(p + i, _mm512_fmsub_ps(load(p + i, k), dec, upd), k);
  });
#else  // the arrays never alias: let the compiler vectorise (AVX2 in the generic variant)
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = mo.beta1 * m[i] + mo.c1 * gi;
    const float vi = mo.beta2 * v[i] + (mo.c2 * gi) * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - (step_size * mi) / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
  }
#endif
}

// LAMB pass 1 over one range; returns {sum p^2, sum u^2}.
LambNorms lamb_moments_range(const float* p, const float* g, float* m, float* v, int64_t n,
                             Moments mo, Direction d) {
  LambNorms out;
#if defined(__AVX512F__)
  const __m512 b1 = _mm512_set1_ps(mo.beta1), c1 = _mm512_set1_ps(mo.c1);
  const __m512 b2 = _mm512_set1_ps(mo.beta2), c2 = _mm512_set1_ps(mo.c2);
  const __m512 ib1 = _mm512_set1_ps(d.inv_bc1), ib2 = _mm512_set1_ps(d.inv_bc2);
  const __m512 ep = _mm512_set1_ps(d.eps), wd = _mm512_set1_ps(d.wd);
  __m512d p_lo = _mm512_setzero_pd(), p_hi = p_lo, u_lo = p_lo, u_hi = p_lo;
  simd::loop(n, [&](int64_t i, __mmask16 k) {
    const __m512 gi = load(g + i, k), pi = load(p + i, k);
    const __m512 mi = ema(b1, load(m + i, k), c1, gi);
    const __m512 vi = ema(b2, load(v + i, k), _mm512_mul_ps(c2, gi), gi);
    store(m + i, mi, k);
    store(v + i, vi, k);
    // Inactive tail lanes are zeroed (0/0 there when eps == 0).
    const __m512 u = _mm512_maskz_mov_ps(k, direction(pi, mi, vi, ib1, ib2, ep, wd));
    add_squares(p_lo, p_hi, pi);
    add_squares(u_lo, u_hi, u);
  });
  out.param_sq = _mm512_reduce_add_pd(_mm512_add_pd(p_lo, p_hi));
  out.update_sq = _mm512_reduce_add_pd(_mm512_add_pd(u_lo, u_hi));
#else
  double param_sq = 0, update_sq = 0;
#pragma omp simd reduction(+ : param_sq, update_sq)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = mo.beta1 * m[i] + mo.c1 * gi;
    const float vi = mo.beta2 * v[i] + (mo.c2 * gi) * gi;
    m[i] = mi;
    v[i] = vi;
    const float u = (mi * d.inv_bc1) / (std::sqrt(vi * d.inv_bc2) + d.eps) + d.wd * p[i];
    param_sq += static_cast<double>(p[i]) * p[i];
    update_sq += static_cast<double>(u) * u;
  }
  out.param_sq = param_sq;
  out.update_sq = update_sq;
#endif
  return out;
}

void lamb_apply_range(float* p, const float* m, const float* v, int64_t n, float step_size, Direction d) {
#if defined(__AVX512F__)
  const __m512 ib1 = _mm512_set1_ps(d.inv_bc1), ib2 = _mm512_set1_ps(d.inv_bc2);
  const __m512 ep = _mm512_set1_ps(d.eps), wd = _mm512_set1_ps(d.wd), ss = _mm512_set1_ps(step_size);
  simd::loop(n, [&](int64_t i, __mmask16 k) {
    const __m512 pi = load(p + i, k);
    const __m512 u = direction(pi, load(m + i, k), load(v + i, k), ib1, ib2, ep, wd);
    store(p + i, _mm512_fnmadd_ps(ss, u, pi), k);
  });
#else
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float u = (m[i] * d.inv_bc1) / (std::sqrt(v[i] * d.inv_bc2) + d.eps) + d.wd * p[i];
    p[i] = p[i] - step_size * u;
  }
#endif
}

}  // namespace

void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, float bias_correction1,
                  float bias_correction2, uint16_t* p_bf16) {
  const Moments mo(beta1, beta2);
  const float decay = 1.0f - lr * weight_decay;
  const float step_size = lr / bias_correction1;
  const float inv_sqrt_bc2 = 1.0f / std::sqrt(bias_correction2);
  for_blocks(n, [&](int64_t, int64_t begin, int64_t end) {
    adamw_range(p + begin, g + begin, m + begin, v + begin, end - begin, mo, decay, step_size,
                inv_sqrt_bc2, eps);
    if (p_bf16 != nullptr) f32_to_bf16(p + begin, p_bf16 + begin, end - begin);  // block still in cache
  });
}

LambNorms lamb_moments(const float* p, const float* g, float* m, float* v, int64_t n, float beta1,
                       float beta2, float eps, float weight_decay, float bias_correction1,
                       float bias_correction2) {
  const Moments mo(beta1, beta2);
  const Direction d{1.0f / bias_correction1, 1.0f / bias_correction2, eps, weight_decay};
  std::vector<LambNorms> partial(static_cast<size_t>(num_blocks(n)));
  for_blocks(n, [&](int64_t b, int64_t begin, int64_t end) {
    partial[static_cast<size_t>(b)] =
        lamb_moments_range(p + begin, g + begin, m + begin, v + begin, end - begin, mo, d);
  });
  LambNorms out;
  for (const LambNorms& s : partial) {
    out.param_sq += s.param_sq;
    out.update_sq += s.update_sq;
  }
  return out;
}

void lamb_apply(float* p, const float* m, const float* v, int64_t n, float step_size, float eps,
                float weight_decay, float bias_correction1, float bias_correction2) {
  const Direction d{1.0f / bias_correction1, 1.0f / bias_correction2, eps, weight_decay};
  for_blocks(n, [&](int64_t, int64_t begin, int64_t end) {
    lamb_apply_range(p + begin, m + begin, v + begin, end - begin, step_size, d);
  });
}

float lamb_trust_ratio(const LambNorms& norms) {
  if (norms.param_sq <= 0.0 || norms.update_sq <= 0.0) return 1.0f;
  return static_cast<float>(std::sqrt(norms.param_sq) / std::sqrt(norms.update_sq));
}

double sum_squares_f64(const float* x, int64_t n) {
  std::vector<double> partial(static_cast<size_t>(num_blocks(n)), 0.0);
  for_blocks(n, [&](int64_t b, int64_t begin, int64_t end) {
    const float* __restrict xx = x;
    double acc[8] = {0};
    int64_t i = begin;
    for (; i + 8 <= end; i += 8)
      for (int k = 0; k < 8; ++k) acc[k] += static_cast<double>(xx[i + k]) * xx[i + k];
    for (; i < end; ++i) acc[0] += static_cast<double>(xx[i]) * xx[i];
    double s = 0;
    for (int k = 0; k < 8; ++k) s += acc[k];
    partial[static_cast<size_t>(b)] = s;
  });
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

float sum_squares(const float* x, int64_t n) { return static_cast<float>(sum_squares_f64(x, n)); }

void scale_inplace(float* x, int64_t n, float s) {
  for_blocks(n, [&](int64_t, int64_t begin, int64_t end) {
    float* __restrict xx = x;
    for (int64_t i = begin; i < end; ++i) xx[i] *= s;
  });
}

void ema_update(float* avg, const float* p, int64_t n, float decay) {
  const float keep = 1.0f - decay;
  for_blocks(n, [&](int64_t, int64_t begin, int64_t end) {
    float* __restrict a = avg;
    const float* __restrict x = p;
    for (int64_t i = begin; i < end; ++i) a[i] = decay * a[i] + keep * x[i];
  });
}

}  // namespace perceiver::cpu::PERCEIVER_ISA
