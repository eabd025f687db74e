// Batch normalisation kernels: channels split across threads; each channel visits its B rows
// of S contiguous floats, summing each row in float (vectorised) and the rows in double, with a
// two-pass mean/variance. Every channel is then one affine map y = (x - center) * scale + shift.
#include "kernels/cpu/batch_norm.h"

#include <algorithm>
#include <cmath>

#include "perceiver/core/parallel.h"

namespace perceiver::cpu {
namespace {

constexpr int64_t kGrainElems = 1 << 15;  // elements per thread before splitting pays off

template <typename F>
void for_channels(int64_t B, int64_t C, int64_t S, F&& fn) {
  const int64_t grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(B * S, 1));
  parallel_for(C, grain, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) fn(c);
  });
}

float row_sum(const float* r, int64_t S) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < S; ++i) s += r[i];
  return s;
}

float row_sq_dev(const float* r, float m, int64_t S) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < S; ++i) s += (r[i] - m) * (r[i] - m);
  return s;
}

// sum dy and sum dy * (x - m) over one row.
void row_grad_sums(const float* dy, const float* x, float m, int64_t S, double* sdy, double* sdyx) {
  float a = 0.0f, b = 0.0f;
#pragma omp simd reduction(+ : a, b)
  for (int64_t i = 0; i < S; ++i) {
    a += dy[i];
    b += dy[i] * (x[i] - m);
  }
  *sdy += a;
  *sdyx += b;
}

// y = (x - center) * scale + shift for channel c of every image (centring first keeps the
// precision when |mean| >> std).
void apply_affine(float* y, const float* x, float center, float scale, float shift, int64_t B,
                  int64_t C, int64_t S, int64_t c) {
  for (int64_t bi = 0; bi < B; ++bi) {
    const float* xr = x + (bi * C + c) * S;
    float* yr = y + (bi * C + c) * S;
#pragma omp simd
    for (int64_t i = 0; i < S; ++i) yr[i] = (xr[i] - center) * scale + shift;
  }
}

}  // namespace

void batch_norm_train_forward(float* y, float* mean, float* var, float* rstd, float* var_unbiased,
                              const float* x, const float* w, const float* b, int64_t B,
                              int64_t C, int64_t S, float eps) {
  const double n = static_cast<double>(B * S);
  for_channels(B, C, S, [&](int64_t c) {
    double acc = 0.0;
    for (int64_t bi = 0; bi < B; ++bi) acc += row_sum(x + (bi * C + c) * S, S);
    const float m = static_cast<float>(acc / n);
    acc = 0.0;
    for (int64_t bi = 0; bi < B; ++bi) acc += row_sq_dev(x + (bi * C + c) * S, m, S);
    const double v = acc / n;
    const float r = static_cast<float>(1.0 / std::sqrt(v + static_cast<double>(eps)));
    mean[c] = m;
    var[c] = static_cast<float>(v);
    rstd[c] = r;
    var_unbiased[c] = static_cast<float>(n > 1.0 ? acc / (n - 1.0) : v);
    const float scale = r * (w ? w[c] : 1.0f);
    apply_affine(y, x, m, scale, b ? b[c] : 0.0f, B, C, S, c);
  });
}

void batch_norm_inference_forward(float* y, const float* x, const float* w, const float* b,
                                  const float* running_mean, const float* running_var, int64_t B,
                                  int64_t C, int64_t S, float eps) {
  for_channels(B, C, S, [&](int64_t c) {
    const float r = 1.0f / std::sqrt(running_var[c] + eps);
    const float scale = r * (w ? w[c] : 1.0f);
    apply_affine(y, x, running_mean[c], scale, b ? b[c] : 0.0f, B, C, S, c);
  });
}

void batch_norm_train_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                               const float* w, const float* mean, const float* rstd, int64_t B,
                               int64_t C, int64_t S) {
  const double n = static_cast<double>(B * S);
  for_channels(B, C, S, [&](int64_t c) {
    double sdy = 0.0, sdyx = 0.0;  // sum dy, sum dy (x - mean)
    for (int64_t bi = 0; bi < B; ++bi)
      row_grad_sums(dy + (bi * C + c) * S, x + (bi * C + c) * S, mean[c], S, &sdy, &sdyx);
    const float r = rstd[c], wc = w ? w[c] : 1.0f;
    dw[c] = static_cast<float>(sdyx * r);  // sum dy * xhat
    db[c] = static_cast<float>(sdy);
    // dx = w r (dy - sdy/n - (x - mean) r^2 sdyx/n) = k dy + k1 (x - mean) + k0
    const float k = wc * r, m = mean[c];
    const float k1 = static_cast<float>(-static_cast<double>(k) * r * r * sdyx / n);
    const float k0 = static_cast<float>(-static_cast<double>(k) * sdy / n);
    for (int64_t bi = 0; bi < B; ++bi) {
      const float* dyr = dy + (bi * C + c) * S;
      const float* xr = x + (bi * C + c) * S;
      float* dxr = dx + (bi * C + c) * S;
#pragma omp simd
      for (int64_t i = 0; i < S; ++i) dxr[i] = k * dyr[i] + (k1 * (xr[i] - m) + k0);
    }
  });
}

void batch_norm_inference_backward(float* dx, float* dw, float* db, const float* dy,
                                   const float* x, const float* w, const float* running_mean,
                                   const float* running_var, int64_t B, int64_t C, int64_t S,
                                   float eps) {
  for_channels(B, C, S, [&](int64_t c) {
    const float r = 1.0f / std::sqrt(running_var[c] + eps);
    double sdy = 0.0, sdyx = 0.0;
    for (int64_t bi = 0; bi < B; ++bi)
      row_grad_sums(dy + (bi * C + c) * S, x + (bi * C + c) * S, running_mean[c], S, &sdy, &sdyx);
    dw[c] = static_cast<float>(sdyx * r);
    db[c] = static_cast<float>(sdy);
    const float k = r * (w ? w[c] : 1.0f);
    for (int64_t bi = 0; bi < B; ++bi) {
      const float* dyr = dy + (bi * C + c) * S;
      float* dxr = dx + (bi * C + c) * S;
#pragma omp simd
      for (int64_t i = 0; i < S; ++i) dxr[i] = dyr[i] * k;
    }
  });
}

void batch_norm_update_running(float* running_mean, float* running_var, const float* mean,
                               const float* var_unbiased, int64_t C, float momentum) {
  for (int64_t c = 0; c < C; ++c) {
    running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * mean[c];
    running_var[c] = (1.0f - momentum) * running_var[c] + momentum * var_unbiased[c];
  }
}

}  // namespace perceiver::cpu
