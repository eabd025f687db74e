// Keys and values from [own channels, shared channels] through LayerNorm (see the header).
#include "kernels/cpu/kv_projection.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/simd_avx512.h"
#include "perceiver/core/parallel.h"

// Compiled once per ISA variant (CMakeLists.txt, kernels/cpu/isa_dispatch.cpp).
namespace perceiver::cpu::PERCEIVER_ISA {
namespace {

constexpr int64_t kGrainRows = 256;  // rows of the per-row passes per thread before splitting

// Row d of W = [Wk; Wv] (C floats).
const float* w_row(const KvProjectionShape& sh, const float* wk, const float* wv, int64_t d) {
  return d < sh.key_dim ? wk + d * sh.channels() : wv + (d - sh.key_dim) * sh.channels();
}

// W~ = W diag(gamma) (D, C) and g = W~ 1 (D); c0 = W beta + bias (D) when c0 is not null.
void scaled_weights(const KvProjectionShape& sh, const float* gamma, const float* beta, const float* wk,
                    const float* bk, const float* wv, const float* bv, float* wt, float* g, float* c0) {
  const int64_t c_all = sh.channels();
  for (int64_t d = 0; d < sh.out_dim(); ++d) {
    const float* w = w_row(sh, wk, wv, d);
    double sum = 0, shift = 0;
    for (int64_t c = 0; c < c_all; ++c) {
      wt[d * c_all + c] = w[c] * gamma[c];
      sum += static_cast<double>(wt[d * c_all + c]);
      shift += static_cast<double>(w[c]) * beta[c];
    }
    g[d] = static_cast<float>(sum);
    if (c0 != nullptr) c0[d] = static_cast<float>(shift + (d < sh.key_dim ? bk[d] : bv[d - sh.key_dim]));
  }
}

// F = s W~s^T (M, D): the shared channels' share of every example's product.
void shared_product(const KvProjectionShape& sh, const float* s, const float* wt, float* f) {
  gemm(false, true, sh.inputs, sh.out_dim(), sh.shared, 1.0f, s, sh.shared, wt + sh.own, sh.channels(), 0.0f, f,
       sh.out_dim());
}

// sum of a row's own channels; sum of their squared deviations from mu
inline float row_sum(const float* x, int64_t n) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t c = 0; c < n; ++c) sum += x[c];
  return sum;
}

inline float row_dev(const float* x, int64_t n, float mu) {
  float dev = 0.0f;
#pragma omp simd reduction(+ : dev)
  for (int64_t c = 0; c < n; ++c) dev += (x[c] - mu) * (x[c] - mu);
  return dev;
}

// One row of K or V in place: y = r (y + f - mu g) + c0 over n outputs (y holds x W~x^T)
inline void finish_row(float* y, int64_t n, float r, float mu, const float* f, const float* g, const float* c0) {
#if defined(__AVX512F__)
  const __m512 vr = _mm512_set1_ps(r), vmu = _mm512_set1_ps(mu);
  simd::loop(n, [&](int64_t d, __mmask16 m) {
    const __m512 acc = _mm512_fnmadd_ps(vmu, simd::load(g + d, m), _mm512_add_ps(simd::load(y + d, m), simd::load(f + d, m)));
    simd::store(y + d, _mm512_fmadd_ps(vr, acc, simd::load(c0 + d, m)), m);
  });
#else
#pragma omp simd
  for (int64_t d = 0; d < n; ++d) y[d] = r * (y[d] + f[d] - mu * g[d]) + c0[d];
#endif
}

// acc += r dy (float: a sum over the batch), db += dy, t += r mu dy over one row's n outputs
void accumulate_row(const float* __restrict dy, int64_t n, float r, double rmu, float* __restrict acc,
                    double* __restrict db, double* __restrict t) {
#pragma omp simd
  for (int64_t d = 0; d < n; ++d) {
    const double val = dy[d];
    acc[d] += r * dy[d];
    db[d] += val;
    t[d] += rmu * val;
  }
}

// Blocks of the inputs m whose partial sums of db and t backward adds in order: a fixed number,
// so the result does not depend on the thread count.
int64_t m_blocks(int64_t m_all) { return std::clamp<int64_t>(m_all / 64, 1, 16); }

// *ab += dy . a, *bb += dy . b over n outputs
void dot_two(const float* __restrict dy, int64_t n, const float* __restrict a, const float* __restrict b, double* ab,
             double* bb) {
  double sa = 0, sb = 0;
#pragma omp simd reduction(+ : sa, sb)
  for (int64_t d = 0; d < n; ++d) {
    sa += static_cast<double>(dy[d]) * a[d];
    sb += static_cast<double>(dy[d]) * b[d];
  }
  *ab += sa;
  *bb += sb;
}

}  // namespace

int64_t kv_projection_forward_workspace(const KvProjectionShape& sh) {
  const int64_t d = sh.out_dim();
  return d * sh.channels() + 2 * d + sh.inputs * d + 2 * sh.inputs;
}

int64_t kv_projection_backward_workspace(const KvProjectionShape& sh) {
  const int64_t d = sh.out_dim();
  // floats, then the double partials of db and t (two per block and output, 2 floats each)
  return 2 * d * sh.channels() + 2 * d + 2 * sh.inputs * d + sh.batch * sh.inputs * sh.own +
         4 * m_blocks(sh.inputs) * d + 1;
}

void kv_projection_forward(const KvProjectionShape& sh, const float* x, const float* s, const float* gamma,
                           const float* beta, const float* wk, const float* bk, const float* wv, const float* bv,
                           float eps, float* k, float* v, float* mean, float* rstd, float* workspace) {
  const int64_t m_all = sh.inputs, c_all = sh.channels(), cx = sh.own, cs = sh.shared;
  const int64_t dk = sh.key_dim, dv = sh.value_dim, d_all = sh.out_dim(), rows = sh.batch * m_all;
  float* wt = workspace;              // (D, C)
  float* g = wt + d_all * c_all;      // (D)
  float* c0 = g + d_all;              // (D)
  float* f = c0 + d_all;              // (M, D)
  float* s_mean = f + m_all * d_all;  // (M) mean of s_m
  float* s_dev = s_mean + m_all;      // (M) sum_c (s_mc - mean)^2
  // W~, g, c0 and F = s W~s^T, once for the batch
  scaled_weights(sh, gamma, beta, wk, bk, wv, bv, wt, g, c0);
  shared_product(sh, s, wt, f);
  parallel_for(m_all, kGrainRows, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      const float* sm = s + m * cs;
      double sum = 0;
      for (int64_t c = 0; c < cs; ++c) sum += sm[c];
      const double mu = sum / static_cast<double>(cs);
      double dev = 0;
      for (int64_t c = 0; c < cs; ++c) dev += (sm[c] - mu) * (sm[c] - mu);
      s_mean[m] = static_cast<float>(mu);
      s_dev[m] = static_cast<float>(dev);
    }
  });
  // K = x W~x[keys]^T, V = x W~x[values]^T, then each row's LayerNorm terms
  gemm(false, true, rows, dk, cx, 1.0f, x, cx, wt, c_all, 0.0f, k, dk);
  gemm(false, true, rows, dv, cx, 1.0f, x, cx, wt + dk * c_all, c_all, 0.0f, v, dv);
  parallel_for(rows, kGrainRows, [&](int64_t r0, int64_t r1) {
    // statistics of a chunk of rows first (independent rows: no long dependency chains):
    // mu = (sum x + Cs s_mean_m) / C; C var = sum (x - mu)^2 + s_dev_m + Cs (s_mean_m - mu)^2
    for (int64_t i = r0; i < r1; ++i) {
      const int64_t m = i % m_all;
      const float* xi = x + i * cx;
      const float sum = row_sum(xi, cx);
      const float mu = (sum + s_mean[m] * static_cast<float>(cs)) / static_cast<float>(c_all);
      mean[i] = mu;
      rstd[i] = row_dev(xi, cx, mu) + s_dev[m] + static_cast<float>(cs) * (s_mean[m] - mu) * (s_mean[m] - mu);
    }
#pragma omp simd
    for (int64_t i = r0; i < r1; ++i) rstd[i] = 1.0f / std::sqrt(rstd[i] / static_cast<float>(c_all) + eps);
    // y = r (x W~x^T + F_m - mu g) + c0
    for (int64_t i = r0; i < r1; ++i) {
      const float* fm = f + (i % m_all) * d_all;
      finish_row(k + i * dk, dk, rstd[i], mean[i], fm, g, c0);
      finish_row(v + i * dv, dv, rstd[i], mean[i], fm + dk, g + dk, c0 + dk);
    }
  });
}

void kv_projection_backward(const KvProjectionShape& sh, const float* dk, const float* dv, const float* x,
                            const float* s, const float* gamma, const float* beta, const float* wk, const float* wv,
                            const float* mean, const float* rstd, float* dx, float* dgamma, float* dbeta,
                            float* dwk, float* dbk, float* dwv, float* dbv, float* workspace) {
  const int64_t b_all = sh.batch, m_all = sh.inputs, c_all = sh.channels(), cx = sh.own, cs = sh.shared;
  const int64_t nk = sh.key_dim, nv = sh.value_dim, d_all = sh.out_dim(), rows = b_all * m_all;
  float* wt = workspace;             // (D, C) W~
  float* g = wt + d_all * c_all;     // (D)
  float* gs = g + d_all;             // (D) W~s 1: g less the own channels' share
  float* f = gs + d_all;             // (M, D) F = s W~s^T
  float* ub = f + m_all * d_all;     // (M, D) sum_b r dy
  float* dwt = ub + m_all * d_all;   // (D, C) gradient of W~
  float* xr = dwt + d_all * c_all;   // (B M, Cx) rows of x times r
  const int64_t blocks = m_blocks(m_all);
  // (blocks, D) doubles each, 8-byte aligned (the workspace is 64-byte aligned)
  float* tail = xr + rows * cx;
  double* db_part = reinterpret_cast<double*>(tail + ((tail - workspace) & 1));
  double* t_part = db_part + blocks * d_all;
  scaled_weights(sh, gamma, beta, wk, nullptr, wv, nullptr, wt, g, nullptr);

  // ub_m = sum_b r_bm dy_bm; db = sum dy; t = sum r mu dy (double partials per block of m, added
  // in block order)
  std::fill(ub, ub + m_all * d_all, 0.0f);
  std::fill(db_part, db_part + 2 * blocks * d_all, 0.0);
  parallel_for(blocks, 1, [&](int64_t k0, int64_t k1) {
    for (int64_t blk = k0; blk < k1; ++blk) {
      double* dbp = db_part + blk * d_all;
      double* tp = t_part + blk * d_all;
      const int64_t m0 = m_all * blk / blocks, m1 = m_all * (blk + 1) / blocks;
      for (int64_t b = 0; b < b_all; ++b)  // rows in memory order
        for (int64_t m = m0; m < m1; ++m) {
          const int64_t i = b * m_all + m;
          const double rmu = static_cast<double>(rstd[i]) * mean[i];
          float* acc = ub + m * d_all;
          accumulate_row(dk + i * nk, nk, rstd[i], rmu, acc, dbp, tp);
          accumulate_row(dv + i * nv, nv, rstd[i], rmu, acc + nk, dbp + nk, tp + nk);
        }
    }
  });
  std::vector<double> db(static_cast<size_t>(d_all), 0.0), t(db.size(), 0.0);
  for (int64_t blk = 0; blk < blocks; ++blk)
    for (int64_t d = 0; d < d_all; ++d) {
      db[static_cast<size_t>(d)] += db_part[blk * d_all + d];
      t[static_cast<size_t>(d)] += t_part[blk * d_all + d];
    }

  // dW~ = dy^T (r x) | ub^T s, less t in every column
  parallel_for(rows, kGrainRows, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i)
      for (int64_t c = 0; c < cx; ++c) xr[i * cx + c] = rstd[i] * x[i * cx + c];
  });
  gemm(true, false, nk, cx, rows, 1.0f, dk, nk, xr, cx, 0.0f, dwt, c_all);
  gemm(true, false, nv, cx, rows, 1.0f, dv, nv, xr, cx, 0.0f, dwt + nk * c_all, c_all);
  gemm(true, false, d_all, cs, m_all, 1.0f, ub, d_all, s, cs, 0.0f, dwt + cx, c_all);
  for (int64_t d = 0; d < d_all; ++d)
    for (int64_t c = 0; c < c_all; ++c) dwt[d * c_all + c] -= static_cast<float>(t[static_cast<size_t>(d)]);

  // dW = dW~ diag(gamma) + db beta^T; dgamma = sum_d dW~ . W; dbeta = W^T db
  std::vector<double> dgam(static_cast<size_t>(c_all), 0.0), dbet(dgam.size(), 0.0);
  for (int64_t d = 0; d < d_all; ++d) {
    const float* w = w_row(sh, wk, wv, d);
    float* dw = d < nk ? dwk + d * c_all : dwv + (d - nk) * c_all;
    const double dbd = db[static_cast<size_t>(d)];
    for (int64_t c = 0; c < c_all; ++c) {
      const float dwtc = dwt[d * c_all + c];
      dw[c] = static_cast<float>(static_cast<double>(dwtc) * gamma[c] + dbd * beta[c]);
      dgam[static_cast<size_t>(c)] += static_cast<double>(dwtc) * w[c];
      dbet[static_cast<size_t>(c)] += static_cast<double>(w[c]) * dbd;
    }
    if (d < nk) dbk[d] = static_cast<float>(dbd);
    else dbv[d - nk] = static_cast<float>(dbd);
  }
  for (int64_t c = 0; c < c_all; ++c) {
    dgamma[c] = static_cast<float>(dgam[static_cast<size_t>(c)]);
    dbeta[c] = static_cast<float>(dbet[static_cast<size_t>(c)]);
  }
  if (dx == nullptr) return;

  // dx = r (dn - mean(dn) - n mean(dn n)) over all C channels, dn = dy W~ (LayerNorm backward);
  // the shared channels enter only through dy . gs and dy . F_m
  shared_product(sh, s, wt, f);
  for (int64_t d = 0; d < d_all; ++d) {
    double sum = 0;
    for (int64_t c = cx; c < c_all; ++c) sum += wt[d * c_all + c];
    gs[d] = static_cast<float>(sum);
  }
  gemm(false, false, rows, cx, nk, 1.0f, dk, nk, wt, c_all, 0.0f, dx, cx);                // dn_x, keys
  gemm(false, false, rows, cx, nv, 1.0f, dv, nv, wt + nk * c_all, c_all, 1.0f, dx, cx);  // + values
  parallel_for(rows, kGrainRows, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      const int64_t m = i % m_all;
      const double r = rstd[i], mu = mean[i];
      double dy_gs = 0, dy_f = 0;
      dot_two(dk + i * nk, nk, gs, f + m * d_all, &dy_gs, &dy_f);
      dot_two(dv + i * nv, nv, gs + nk, f + m * d_all + nk, &dy_gs, &dy_f);
      const float* xi = x + i * cx;
      float* dxi = dx + i * cx;
      double sum_dn = 0, sum_dn_x = 0;  // sum dn, sum dn (x - mu) over the own channels
#pragma omp simd reduction(+ : sum_dn, sum_dn_x)
      for (int64_t c = 0; c < cx; ++c) {
        sum_dn += dxi[c];
        sum_dn_x += static_cast<double>(dxi[c]) * (xi[c] - mu);
      }
      const double a = (sum_dn + dy_gs) / static_cast<double>(c_all);
      const double bn = (r * sum_dn_x + r * (dy_f - mu * dy_gs)) / static_cast<double>(c_all);
      const float rf = static_cast<float>(r), af = static_cast<float>(a), bf = static_cast<float>(r * bn);
      const float muf = static_cast<float>(mu);
#pragma omp simd
      for (int64_t c = 0; c < cx; ++c) dxi[c] = rf * (dxi[c] - af - (xi[c] - muf) * bf);
    }
  });
}

}  // namespace perceiver::cpu::PERCEIVER_ISA
