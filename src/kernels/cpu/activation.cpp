// Activation kernels. GELU evaluates Phi(x) through erfc (relative error ~1e-7 even deep in the
// negative tail, no 1 + erf cancellation); softmax subtracts the row max before exp.
#include "kernels/cpu/activation.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/exp_approx.h"
#include "kernels/cpu/simd_avx512.h"
#include "perceiver/core/parallel.h"

// Compiled once per ISA variant (CMakeLists.txt, kernels/cpu/isa_dispatch.cpp).
namespace perceiver::cpu::PERCEIVER_ISA {
namespace {

constexpr int64_t kGrainElems = 1 << 15;  // elements per thread before splitting pays off
constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, kGrainElems / std::max<int64_t>(cols, 1)); }

// Elementwise map over [0, n) in parallel chunks.
template <typename F>
void map_chunks(int64_t n, F&& body) {
  parallel_for(n, kGrainElems, [&](int64_t i0, int64_t i1) { body(i0, i1); });
}

#if defined(__AVX512F__)

// Phi(x) = erfc(-x / sqrt 2) / 2 and *gauss = exp(-x^2 / 2), for a vector of x.
// erfc(z), z >= 0, is Numerical Recipes' erfcc (Chebyshev fit, relative error < 1.2e-7):
//   erfc(z) = t exp(-z^2 + P(t)),  t = 1 / (1 + z / 2),
// with exp(-z^2) = exp(-x^2/2) taken as exp(hi) (1 + lo) where hi + lo = -x^2/2 exactly (FMA), so
// the negative tail keeps its relative accuracy; erfc(-z) = 2 - erfc(z) for x > 0.
inline __m512 phi_cdf(__m512 x, __m512* gauss) {
  const __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(kInvSqrt2));
  const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f),
                                 _mm512_fmadd_ps(z, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.0f)));
  static constexpr float kP[] = {0.17087277f,  -0.82215223f, 1.48851587f, -1.13520398f,
                                 0.27886807f,  -0.18628806f, 0.09678418f, 0.37409196f,
                                 1.00002368f, -1.26551223f};
  __m512 p = _mm512_set1_ps(kP[0]);
  for (int k = 1; k < 10; ++k) p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(kP[k]));
  // -x^2/2 from |x| clamped at 14, so huge |x| cannot overflow to -inf and turn exp(hi) * lo
  // into 0 * inf = NaN
  const __m512 xc = _mm512_min_ps(_mm512_abs_ps(x), _mm512_set1_ps(14.0f));
  const __m512 hx = _mm512_mul_ps(xc, _mm512_set1_ps(-0.5f));  // exact
  const __m512 hi = _mm512_mul_ps(hx, xc);
  const __m512 lo = _mm512_fmsub_ps(hx, xc, hi);  // hx * xc - hi, exact
  const __m512 e = simd::exp(hi);
  // exp(-x^2/2) is exactly 0 for |x| > 14 (the clamp would leave exp(-98), a denormal)
  const __mmask16 far = _mm512_cmp_ps_mask(_mm512_abs_ps(x), _mm512_set1_ps(14.0f), _CMP_GT_OQ);
  *gauss = _mm512_maskz_fmadd_ps(static_cast<__mmask16>(~far), e, lo, e);
  const __m512 half_erfc =
      _mm512_mul_ps(_mm512_mul_ps(t, simd::exp(p)), _mm512_mul_ps(*gauss, _mm512_set1_ps(0.5f)));
  const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
  return _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(1.0f), half_erfc), half_erfc);
}

void gelu_fwd_range(float* y, const float* x, int64_t n) {
  simd::loop(n, [&](int64_t i, __mmask16 m) {
    const __m512 v = simd::load(x + i, m);
    __m512 g;
    simd::store(y + i, _mm512_mul_ps(v, phi_cdf(v, &g)), m);
  });
}

void gelu_bwd_range(float* dx, const float* dy, const float* x, int64_t n) {
  simd::loop(n, [&](int64_t i, __mmask16 m) {
    const __m512 v = simd::load(x + i, m);
    __m512 g;
    const __m512 cdf = phi_cdf(v, &g);
    const __m512 d = _mm512_fmadd_ps(_mm512_mul_ps(v, g), _mm512_set1_ps(kInvSqrt2Pi), cdf);
    simd::store(dx + i, _mm512_mul_ps(simd::load(dy + i, m), d), m);
  });
}

void gelu_fwd_grad_range(float* y, float* dydx, const float* x, int64_t n) {
  simd::loop(n, [&](int64_t i, __mmask16 m) {
    const __m512 v = simd::load(x + i, m);
    __m512 g;
    const __m512 cdf = phi_cdf(v, &g);
    simd::store(y + i, _mm512_mul_ps(v, cdf), m);
    simd::store(dydx + i, _mm512_fmadd_ps(_mm512_mul_ps(v, g), _mm512_set1_ps(kInvSqrt2Pi), cdf), m);
  });
}

float softmax_row_impl(float* y, const float* x, int64_t C) {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 vmax = ninf;
  simd::loop(C, [&](int64_t i, __mmask16 m) {
    vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(ninf, m, x + i));
  });
  const float mx = _mm512_reduce_max_ps(vmax);
  const __m512 vmx = _mm512_set1_ps(mx);
  __m512 vsum = _mm512_setzero_ps();
  simd::loop(C, [&](int64_t i, __mmask16 m) {
    const __m512 e = simd::exp(_mm512_sub_ps(simd::load(x + i, m), vmx));
    vsum = _mm512_mask_add_ps(vsum, m, vsum, e);
    simd::store(y + i, e, m);
  });
  const float sum = _mm512_reduce_add_ps(vsum);
  const __m512 inv = _mm512_set1_ps(1.0f / sum);
  simd::loop(C, [&](int64_t i, __mmask16 m) { simd::store(y + i, _mm512_mul_ps(simd::load(y + i, m), inv), m); });
  return mx + std::log(sum);
}

void softmax_bwd_row(float* dx, const float* dy, const float* y, int64_t C) {
  __m512 acc = _mm512_setzero_ps();
  simd::loop(C, [&](int64_t i, __mmask16 m) {
    acc = _mm512_fmadd_ps(simd::load(dy + i, m), simd::load(y + i, m), acc);
  });
  const __m512 dot = _mm512_set1_ps(_mm512_reduce_add_ps(acc));
  simd::loop(C, [&](int64_t i, __mmask16 m) {
    simd::store(dx + i, _mm512_mul_ps(simd::load(y + i, m), _mm512_sub_ps(simd::load(dy + i, m), dot)), m);
  });
}

#else  // portable path

// The AVX-512 path's Phi(x) and exp(-x^2/2) (see phi_cdf above) in branch-free scalar code that
// GCC vectorises for AVX2 inside `omp simd` loops: Numerical Recipes' erfcc, exp by exp_approx,
// and -x^2/2 split as hi + lo through double (a float product is exact in double), which keeps
// the negative tail's relative accuracy without needing an FMA instruction.
inline float phi_cdf_scalar(float x, float* gauss) {
  const float z = std::fabs(x) * kInvSqrt2;
  const float t = 1.0f / (0.5f * z + 1.0f);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  const double xc = std::min(std::fabs(static_cast<double>(x)), 14.0);  // no overflow to -inf
  const double h = -0.5 * xc * xc;
  const float hi = static_cast<float>(h);
  const float lo = static_cast<float>(h - static_cast<double>(hi));
  const float e = exp_approx(hi);
  *gauss = e * lo + e;
  const float half_erfc = t * exp_approx(p) * (*gauss * 0.5f);
  return x < 0.0f ? half_erfc : 1.0f - half_erfc;
}

void gelu_fwd_range(float* y, const float* x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float g;
    y[i] = x[i] * phi_cdf_scalar(x[i], &g);
  }
}

void gelu_bwd_range(float* dx, const float* dy, const float* x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float g;
    const float cdf = phi_cdf_scalar(x[i], &g);
    dx[i] = dy[i] * (cdf + x[i] * g * kInvSqrt2Pi);
  }
}

void gelu_fwd_grad_range(float* y, float* dydx, const float* x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float g;
    const float cdf = phi_cdf_scalar(x[i], &g);
    y[i] = x[i] * cdf;
    dydx[i] = cdf + x[i] * g * kInvSqrt2Pi;
  }
}

float softmax_row_impl(float* y, const float* x, int64_t C) {
  float mx = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : mx)
  for (int64_t i = 0; i < C; ++i) mx = std::max(mx, x[i]);
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < C; ++i) {
    const float e = exp_approx(x[i] - mx);
    y[i] = e;
    sum += e;
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int64_t i = 0; i < C; ++i) y[i] *= inv;
  return mx + std::log(sum);
}

void softmax_bwd_row(float* dx, const float* dy, const float* y, int64_t C) {
  float dot = 0;
#pragma omp simd reduction(+ : dot)
  for (int64_t i = 0; i < C; ++i) dot += dy[i] * y[i];
  for (int64_t i = 0; i < C; ++i) dx[i] = y[i] * (dy[i] - dot);
}

#endif

}  // namespace

void gelu_forward(float* y, const float* x, int64_t n) {
  map_chunks(n, [&](int64_t i0, int64_t i1) { gelu_fwd_range(y + i0, x + i0, i1 - i0); });
}

void gelu_backward(float* dx, const float* dy, const float* x, int64_t n) {
  map_chunks(n, [&](int64_t i0, int64_t i1) { gelu_bwd_range(dx + i0, dy + i0, x + i0, i1 - i0); });
}

void gelu_forward_with_grad(float* y, float* d, const float* x, int64_t n) {
  map_chunks(n, [&](int64_t i0, int64_t i1) { gelu_fwd_grad_range(y + i0, d + i0, x + i0, i1 - i0); });
}

void relu_forward(float* y, const float* x, int64_t n) {
  map_chunks(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
  });
}

void relu_backward(float* dx, const float* dy, const float* x, int64_t n) {
  map_chunks(n, [&](int64_t i0, int64_t i1) {
    // dy is read unconditionally: a select the compiler vectorises, where reading it only for
    // x > 0 compiles to a branch that mispredicts on every other element of random signs
    for (int64_t i = i0; i < i1; ++i) {
      const float g = dy[i];
      dx[i] = x[i] > 0.0f ? g : 0.0f;
    }
  });
}

float softmax_row(float* y, const float* x, int64_t cols) { return softmax_row_impl(y, x, cols); }

void softmax_forward(float* y, const float* x, int64_t rows, int64_t cols) {
  parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) softmax_row_impl(y + r * cols, x + r * cols, cols);
  });
}

void softmax_backward(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols) {
  parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) softmax_bwd_row(dx + r * cols, dy + r * cols, y + r * cols, cols);
  });
}

}  // namespace perceiver::cpu::PERCEIVER_ISA
