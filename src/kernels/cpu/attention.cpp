// Flash-attention style forward/backward on CPU (Dao et al. 2022, arXiv 2205.14135): for each
// (batch, head) the score tile S = scale * Q K_blk^T (+ mask) is formed one key block at a time.
// Forward keeps a running max and sum per query and rescales the output accumulator:
//   m' = max(m, max_j S_j), l' = l e^{m-m'} + sum_j e^{S_j-m'}, O' = O e^{m-m'} + e^{S-m'} V_blk,
// then O /= l, lse = m + log l. Backward recomputes P = e^{S - lse} and uses
//   dV = P^T dO, dP = dO V^T, D = rowsum(dO * O), dS = P (dP - D), dQ = scale dS K, dK = scale dS^T Q.
#include "kernels/cpu/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cpu/convert.h"
#include "kernels/cpu/exp_approx.h"
#include "kernels/cpu/gemm.h"
#include "perceiver/core/parallel.h"

// Compiled once per ISA variant (CMakeLists.txt, kernels/cpu/isa_dispatch.cpp).
namespace perceiver::cpu::PERCEIVER_ISA {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Per-thread scratch reused across calls (fresh pages are expensive here: perf_notes.md).
float* scratch(size_t floats) {
  thread_local std::vector<float> buf;
  if (buf.size() < floats) buf.resize(floats);
  return buf.data();
}

uint16_t* scratch_bf16(size_t n) {
  thread_local std::vector<uint16_t> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// The fp32 and bf16 products of the forward pass (bf16: fp32 accumulation, cpu::gemm_bf16).
void gemm_t(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
            int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void gemm_t(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const uint16_t* a,
            int64_t lda, const uint16_t* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  gemm_bf16(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Work items: (batch*head) x row chunks; rows are split only when there are fewer (b, h) pairs
// than threads. Runs items in parallel (each GEMM single-threaded) or, with one item per
// thread impossible, serially so that each GEMM can use the threads itself.
template <typename Fn>
void for_each_item(int64_t bh, int64_t chunks, const Fn& fn) {
  const int64_t items = bh * chunks;
  const int threads = static_cast<int>(std::min<int64_t>(num_threads(), items));
  if (threads < 2 || in_parallel_region()) {
    for (int64_t i = 0; i < items; ++i) fn(i / chunks, i % chunks);
    return;
  }
  SerialGemmScope serial;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t i = 0; i < items; ++i) fn(i / chunks, i % chunks);
}

// S (rows x mb, ld ldS) = scale * Q K_blk^T + mask_blk (mask may be null).
template <typename T>
void scores(int64_t rows, int64_t mb, int64_t dqk, float scale, const T* q, int64_t ldq,
            const T* k, const float* mask, float* s, int64_t lds) {
  gemm_t(false, true, rows, mb, dqk, scale, q, ldq, k, ldq, 0.0f, s, lds);
  if (mask == nullptr) return;
  for (int64_t i = 0; i < rows; ++i) {
    float* row = s + i * lds;
#pragma omp simd
    for (int64_t j = 0; j < mb; ++j) row[j] += mask[j];
  }
}

// One online-softmax step for a row: exponentiates S in place, updates max and sum; returns the
// factor e^{m - m'} by which the row's output accumulator must be rescaled.
float online_softmax_row(float* row, int64_t mb, float& run_max, float& run_sum) {
  float bmax = kNegInf;
#pragma omp simd reduction(max : bmax)
  for (int64_t j = 0; j < mb; ++j) bmax = std::max(bmax, row[j]);
  const float new_max = std::max(run_max, bmax);
  if (new_max == -kNegInf) {  // a +inf score: e^{inf - inf} is NaN, as in exact arithmetic
    std::fill(row, row + mb, std::numeric_limits<float>::quiet_NaN());
    run_sum = std::numeric_limits<float>::quiet_NaN();
    return 1.0f;
  }
  if (new_max == kNegInf) {  // every score so far masked out, or NaN (which the max skips)
    const bool nan = std::any_of(row, row + mb, [](float x) { return std::isnan(x); });
    std::fill(row, row + mb, nan ? std::numeric_limits<float>::quiet_NaN() : 0.0f);
    if (nan) run_sum = std::numeric_limits<float>::quiet_NaN();
    return 1.0f;
  }
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < mb; ++j) {
    const float p = exp_approx(row[j] - new_max);
    row[j] = p;
    sum += p;
  }
  const float corr = std::exp(run_max - new_max);  // 0 when run_max = -inf
  run_sum = run_sum * corr + sum;
  run_max = new_max;
  return corr;
}

// P = e^{S - lse} in place (all zero for a fully masked query, lse = -inf).
void probabilities_row(float* row, int64_t mb, float lse) {
  if (lse == kNegInf) {
    std::fill(row, row + mb, 0.0f);
    return;
  }
#pragma omp simd
  for (int64_t j = 0; j < mb; ++j) row[j] = exp_approx(row[j] - lse);
}

}  // namespace

int64_t attention_key_block(int64_t rows) {
  const int64_t target = (64 * 1024) / std::max<int64_t>(rows, 1);  // 64 Ki floats = 256 KiB
  return std::clamp<int64_t>((target + 15) / 16 * 16, 64, 2048);
}

namespace {

// T = float: fp32 products; T = uint16_t: bf16 q, k, v and probabilities, fp32 accumulation.
template <typename T>
void attention_forward_impl(const AttentionShape& s, const T* q, const T* k, const T* v,
                            const float* mask, float scale, float* out, float* lse,
                            int64_t key_block) {
  constexpr bool kBf16 = std::is_same_v<T, uint16_t>;
  const int64_t qw = s.heads * s.dqk, vw = s.heads * s.dv, bh = s.batch * s.heads;
  if (bh == 0 || s.n == 0) return;
  const int64_t chunks =
      bh >= num_threads() ? 1 : std::min<int64_t>(s.n, (num_threads() + bh - 1) / bh);
  const int64_t chunk_rows = (s.n + chunks - 1) / chunks;
  const int64_t kb = key_block > 0 ? key_block : attention_key_block(chunk_rows);

  for_each_item(bh, chunks, [&](int64_t item, int64_t chunk) {
    const int64_t b = item / s.heads, h = item % s.heads;
    const int64_t r0 = chunk * chunk_rows, rows = std::min(s.n, r0 + chunk_rows) - r0;
    if (rows <= 0) return;
    const T* qp = q + (b * s.n + r0) * qw + h * s.dqk;
    float* op = out + (b * s.n + r0) * vw + h * s.dv;
    float* lp = lse + item * s.n + r0;
    float* tile = scratch(static_cast<size_t>(rows * kb + 2 * rows));
    float* run_max = tile + rows * kb;
    float* run_sum = run_max + rows;
    uint16_t* tile16 = kBf16 ? scratch_bf16(static_cast<size_t>(rows * kb)) : nullptr;
    std::fill(run_max, run_max + rows, kNegInf);
    std::fill(run_sum, run_sum + rows, 0.0f);

    for (int64_t j0 = 0; j0 < s.m; j0 += kb) {
      const int64_t mb = std::min(kb, s.m - j0);
      scores(rows, mb, s.dqk, scale, qp, qw, k + (b * s.m + j0) * qw + h * s.dqk,
             mask ? mask + b * s.m + j0 : nullptr, tile, kb);
      for (int64_t i = 0; i < rows; ++i) {
        const float corr = online_softmax_row(tile + i * kb, mb, run_max[i], run_sum[i]);
        if (j0 > 0 && corr != 1.0f) {
          float* orow = op + i * vw;
#pragma omp simd
          for (int64_t c = 0; c < s.dv; ++c) orow[c] *= corr;
        }
        if constexpr (kBf16) f32_to_bf16(tile + i * kb, tile16 + i * kb, mb);
      }
      // O = O * corr + P V_blk (the first block overwrites O)
      const T* vp = v + (b * s.m + j0) * vw + h * s.dv;
      if constexpr (kBf16)
        gemm_t(false, false, rows, s.dv, mb, 1.0f, tile16, kb, vp, vw, j0 == 0 ? 0.0f : 1.0f, op, vw);
      else
        gemm_t(false, false, rows, s.dv, mb, 1.0f, tile, kb, vp, vw, j0 == 0 ? 0.0f : 1.0f, op, vw);
    }
    for (int64_t i = 0; i < rows; ++i) {
      float* orow = op + i * vw;
      if (run_sum[i] > 0.0f) {
        const float inv = 1.0f / run_sum[i];
#pragma omp simd
        for (int64_t c = 0; c < s.dv; ++c) orow[c] *= inv;
        lp[i] = run_max[i] + std::log(run_sum[i]);
      } else if (std::isnan(run_sum[i])) {  // a NaN (or +inf) score: the output is NaN, never hidden
        std::fill(orow, orow + s.dv, std::numeric_limits<float>::quiet_NaN());
        lp[i] = std::numeric_limits<float>::quiet_NaN();
      } else {  // no keys, or all masked to -inf
        std::fill(orow, orow + s.dv, 0.0f);
        lp[i] = kNegInf;
      }
    }
  });
}

}  // namespace

void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v,
                       const float* mask, float scale, float* out, float* lse, int64_t key_block) {
  attention_forward_impl(s, q, k, v, mask, scale, out, lse, key_block);
}

void attention_forward_bf16(const AttentionShape& s, const uint16_t* q, const uint16_t* k,
                            const uint16_t* v, const float* mask, float scale, float* out,
                            float* lse, int64_t key_block) {
  attention_forward_impl(s, q, k, v, mask, scale, out, lse, key_block);
}

void attention_merge(const AttentionShape& s, float* out, float* lse, const float* out_blk,
                     const float* lse_blk) {
  const int64_t vw = s.heads * s.dv;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.n; ++i) {
        float& l = lse[(b * s.heads + h) * s.n + i];
        const float lb = lse_blk[(b * s.heads + h) * s.n + i];
        if (lb == kNegInf) continue;  // the new block adds nothing
        float* o = out + (b * s.n + i) * vw + h * s.dv;
        const float* ob = out_blk + (b * s.n + i) * vw + h * s.dv;
        const float m = std::max(l, lb);
        const float l_new = m + std::log(std::exp(l - m) + std::exp(lb - m));
        const float wa = std::exp(l - l_new), wb = std::exp(lb - l_new);  // wa = 0 when l = -inf
#pragma omp simd
        for (int64_t c = 0; c < s.dv; ++c) o[c] = wa * o[c] + wb * ob[c];
        l = l_new;
      }
}

namespace {

// T = float: fp32 products; T = uint16_t (mixed precision): bf16 q, k, v, out saved by the
// forward, dO, P and dS rounded to bf16 for the four products, fp32 accumulation; D, the
// softmax recomputation and dS = P (dP - D) stay fp32.
template <typename T>
void attention_backward_impl(const AttentionShape& s, const float* dout, const T* q, const T* k, const T* v,
                             const T* out, const float* lse, const float* mask, float scale, float* dq,
                             float* dk, float* dv, int64_t key_block) {
  constexpr bool kBf16 = std::is_same_v<T, uint16_t>;
  const int64_t qw = s.heads * s.dqk, vw = s.heads * s.dv, bh = s.batch * s.heads;
  if (bh == 0) return;
  const int64_t kb = key_block > 0 ? key_block : attention_key_block(s.n);

  for_each_item(bh, 1, [&](int64_t item, int64_t) {
    const int64_t b = item / s.heads, h = item % s.heads, n = s.n;
    const T* qp = q + b * n * qw + h * s.dqk;
    const float* dop = dout + b * n * vw + h * s.dv;
    const T* op = out + b * n * vw + h * s.dv;
    const float* lp = lse + item * n;
    float* dqp = dq + b * n * qw + h * s.dqk;
    float* p_tile = scratch(static_cast<size_t>(2 * n * kb + n + (kBf16 ? s.dv : 0)));
    float* ds_tile = p_tile + n * kb;
    float* drow = ds_tile + n * kb;
    // bf16: this head's dO (n x dv, packed), P and dS tiles
    uint16_t* do16 = kBf16 ? scratch_bf16(static_cast<size_t>(n * s.dv + 2 * n * kb)) : nullptr;
    uint16_t* p16 = kBf16 ? do16 + n * s.dv : nullptr;
    uint16_t* ds16 = kBf16 ? p16 + n * kb : nullptr;

    for (int64_t i = 0; i < n; ++i) {  // D_i = sum_c dO_ic O_ic
      const float* a = dop + i * vw;
      const float* o;
      if constexpr (kBf16) {
        float* row = drow + n;  // one fp32 row of O
        bf16_to_f32(op + i * vw, row, s.dv);
        o = row;
        f32_to_bf16(a, do16 + i * s.dv, s.dv);
      } else {
        o = op + i * vw;
      }
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int64_t c = 0; c < s.dv; ++c) acc += a[c] * o[c];
      drow[i] = acc;
    }
    if (s.m == 0)
      for (int64_t i = 0; i < n; ++i) std::fill(dqp + i * qw, dqp + i * qw + s.dqk, 0.0f);

    for (int64_t j0 = 0; j0 < s.m; j0 += kb) {
      const int64_t mb = std::min(kb, s.m - j0);
      const T* kp = k + (b * s.m + j0) * qw + h * s.dqk;
      const T* vp = v + (b * s.m + j0) * vw + h * s.dv;
      float* dvp = dv + (b * s.m + j0) * vw + h * s.dv;
      float* dkp = dk + (b * s.m + j0) * qw + h * s.dqk;
      scores(n, mb, s.dqk, scale, qp, qw, kp, mask ? mask + b * s.m + j0 : nullptr, p_tile, kb);
      for (int64_t i = 0; i < n; ++i) probabilities_row(p_tile + i * kb, mb, lp[i]);
      // dV_blk = P^T dO ; dP = dO V_blk^T
      if constexpr (kBf16) {
        for (int64_t i = 0; i < n; ++i) f32_to_bf16(p_tile + i * kb, p16 + i * kb, mb);
        gemm_t(true, false, mb, s.dv, n, 1.0f, p16, kb, do16, s.dv, 0.0f, dvp, vw);
        gemm_t(false, true, n, mb, s.dv, 1.0f, do16, s.dv, vp, vw, 0.0f, ds_tile, kb);
      } else {
        gemm_t(true, false, mb, s.dv, n, 1.0f, p_tile, kb, dop, vw, 0.0f, dvp, vw);
        gemm_t(false, true, n, mb, s.dv, 1.0f, dop, vw, vp, vw, 0.0f, ds_tile, kb);
      }
      // dS = P (dP - D) in place
      for (int64_t i = 0; i < n; ++i) {
        const float* prow = p_tile + i * kb;
        float* dsrow = ds_tile + i * kb;
        const float d = drow[i];
#pragma omp simd
        for (int64_t j = 0; j < mb; ++j) dsrow[j] = prow[j] * (dsrow[j] - d);
        if constexpr (kBf16) f32_to_bf16(dsrow, ds16 + i * kb, mb);
      }
      // dQ += scale dS K_blk ; dK_blk = scale dS^T Q
      if constexpr (kBf16) {
        gemm_t(false, false, n, s.dqk, mb, scale, ds16, kb, kp, qw, j0 == 0 ? 0.0f : 1.0f, dqp, qw);
        gemm_t(true, false, mb, s.dqk, n, scale, ds16, kb, qp, qw, 0.0f, dkp, qw);
      } else {
        gemm_t(false, false, n, s.dqk, mb, scale, ds_tile, kb, kp, qw, j0 == 0 ? 0.0f : 1.0f, dqp, qw);
        gemm_t(true, false, mb, s.dqk, n, scale, ds_tile, kb, qp, qw, 0.0f, dkp, qw);
      }
    }
  });
}

}  // namespace

void attention_backward(const AttentionShape& s, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse,
                        const float* mask, float scale, float* dq, float* dk, float* dv,
                        int64_t key_block) {
  attention_backward_impl(s, dout, q, k, v, out, lse, mask, scale, dq, dk, dv, key_block);
}

void attention_backward_bf16(const AttentionShape& s, const float* dout, const uint16_t* q, const uint16_t* k,
                             const uint16_t* v, const uint16_t* out, const float* lse, const float* mask,
                             float scale, float* dq, float* dk, float* dv, int64_t key_block) {
  attention_backward_impl(s, dout, q, k, v, out, lse, mask, scale, dq, dk, dv, key_block);
}

}  // namespace perceiver::cpu::PERCEIVER_ISA
