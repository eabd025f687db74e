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
#include "kernels/cpu/copy_rows.h"
#include "kernels/cpu/exp_approx.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/simd_avx512.h"
#include "kernels/cpu/small_gemm.h"
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
            const T* k, int64_t ldk, const float* mask, float* s, int64_t lds) {
  gemm_t(false, true, rows, mb, dqk, scale, q, ldq, k, ldk, 0.0f, s, lds);
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

// Copies a rows x cols block with row stride ld into dense rows (dst row stride cols), and back.
// The per-head slices of (B, N, H*D) tensors are strided; oneDNN's bf16 matmul runs up to 20x
// slower on strided operands than on dense ones (AMX, docs/BENCHMARKS.md), so with several heads
// the bf16 kernels pack each head's slices once per block. fp32 (dnnl_sgemm) runs the strided
// slices directly: packing them cost more than it saved there.
template <typename T>
void pack_rows(T* dst, const T* src, int64_t rows, int64_t cols, int64_t ld) {
  copy_rows(dst, cols, src, ld, rows, cols);
}
template <typename T>
void unpack_rows(T* dst, int64_t ld, const T* src, int64_t rows, int64_t cols) {
  copy_rows(dst, ld, src, cols, rows, cols);
}

// A head's slice of a (rows, ld) tensor for the products: the slice itself (and its ld) when
// `direct`, else a dense copy in buf (ld = cols).
template <typename T>
const T* slice_for_gemm(bool direct, const T* src, int64_t rows, int64_t cols, int64_t ld, T* buf, int64_t* ld_out) {
  *ld_out = direct ? ld : cols;
  if (direct) return src;
  pack_rows(buf, src, rows, cols, ld);
  return buf;
}

// ---- Small heads: the whole item in transposed-score layout --------------------------------
// When a (batch, head) item's score tile fits in L2 and the heads are narrow (ViT, the latent
// self-attentions, the Fashion-MNIST cross-attention), the item is computed with every key in one
// block and the scores transposed, S^T = scale K Q^T (keys x queries): then every product takes
// its B operand by rows (K, V, Q, dO, or the small packs Q^T, dO^T) and its A operand by
// broadcasts (small_gemm), and the softmax statistics run down columns, a vector of queries at a
// time. No online rescaling is needed: one block holds all the keys. (Keeping P for the backward
// instead of recomputing it saved 1-2% of a training step for 15-20% more memory held for it:
// not done.)
// The AVX-512 variant only: the portable small_gemm ran these items 2-3x slower than the
// blocked path's library GEMMs (bench_kernels BM_attention_train, PERCEIVER_ISA=generic).
#if defined(__AVX512F__)
constexpr int64_t kSmallTileFloats = 64 * 1024;  // keys x queries of one score tile (256 KiB)
constexpr int64_t kSmallHeadDim = 64;
constexpr int64_t kSmallMinRows = 16;  // queries run down a vector: fewer leave lanes idle

// With fewer than 16 queries the transposed layout wastes most of each vector: 1 query over 256 keys
// (a decoder's) ran 3.6x slower than the blocked path.
bool small_path(int64_t rows, int64_t keys, int64_t dqk, int64_t dv, int64_t key_block) {
  return key_block <= 0 && dqk <= kSmallHeadDim && dv <= kSmallHeadDim && rows >= kSmallMinRows &&
         rows * keys <= kSmallTileFloats;
}

// dst (cols x rows, dense) = src^T for src rows x cols with row stride ld: each dst row is
// gathered (16 source rows per gather), so the stores stay contiguous.
void transpose_into(float* dst, const float* src, int64_t rows, int64_t cols, int64_t ld) {
  if (rows * ld < (int64_t{1} << 31)) {  // 32-bit gather offsets
    const __m512i step = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(static_cast<int>(ld)));
    for (int64_t c = 0; c < cols; ++c)
      simd::loop(rows, [&](int64_t i, __mmask16 mk) {
        const __m512 x = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mk, step, src + i * ld + c, 4);
        simd::store(dst + c * rows + i, x, mk);
      });
    return;
  }
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t i = 0; i < rows; ++i) dst[c * rows + i] = src[i * ld + c];
}

// t (keys x cols) += mask[j] along each row j.
void add_row_mask(float* t, int64_t keys, int64_t cols, const float* mask) {
  for (int64_t j = 0; j < keys; ++j) {
    float* row = t + j * cols;
    const float mj = mask[j];
#pragma omp simd
    for (int64_t i = 0; i < cols; ++i) row[i] += mj;
  }
}

// t (keys x cols) = exp(t - shift[col]) in place; sum (cols) += the column sums when non-null.
void exp_columns(float* t, int64_t keys, int64_t cols, const float* shift, float* sum) {
  for (int64_t j = 0; j < keys; ++j) {
    float* row = t + j * cols;
    simd::loop(cols, [&](int64_t i, __mmask16 mk) {
      const __m512 e = simd::exp(_mm512_sub_ps(simd::load(row + i, mk), simd::load(shift + i, mk)));
      simd::store(row + i, e, mk);
      if (sum != nullptr) simd::store(sum + i, _mm512_add_ps(simd::load(sum + i, mk), e), mk);
    });
  }
}

// One item's rows [0, rows) of the forward: q, out at the item's first row and head column
// (row strides qw, vw), k, v at the item's first key, mask the item's (or null), lse its rows.
void small_forward_item(const AttentionShape& s, int64_t rows, const float* q, const float* k, const float* v,
                        const float* mask, float scale, float* out, float* lse) {
  const int64_t qw = s.heads * s.dqk, vw = s.heads * s.dv, m = s.m;
  float* qt = scratch(static_cast<size_t>(rows * s.dqk + m * rows + 3 * rows));
  float* st = qt + rows * s.dqk;
  float* shift = st + m * rows;
  float* sum = shift + rows;
  float* inv = sum + rows;
  transpose_into(qt, q, rows, s.dqk, qw);                              // Q^T (dqk x rows)
  small_gemm(false, m, rows, s.dqk, scale, k, qw, qt, rows, 0.0f, st, rows);  // S^T = scale K Q^T
  if (mask != nullptr) add_row_mask(st, m, rows, mask);
  // column maxima; a column of -inf (no keys, all masked) is shifted by 0 so its P is 0, and
  // +inf or NaN scores give NaN, as in exact arithmetic (the max skips NaN; exp(NaN) does not)
  std::fill(shift, shift + rows, kNegInf);
  for (int64_t j = 0; j < m; ++j) {
    const float* row = st + j * rows;
#pragma omp simd
    for (int64_t i = 0; i < rows; ++i) shift[i] = std::max(shift[i], row[i]);
  }
  for (int64_t i = 0; i < rows; ++i) shift[i] = shift[i] == kNegInf ? 0.0f : shift[i];
  std::fill(sum, sum + rows, 0.0f);
  exp_columns(st, m, rows, shift, sum);  // e^{S^T - max}, l
  // P^T = e^{S^T - max} / l in place (a NaN column stays NaN, a column of zeros zero), O = P V
  for (int64_t i = 0; i < rows; ++i) inv[i] = sum[i] > 0.0f ? 1.0f / sum[i] : (std::isnan(sum[i]) ? sum[i] : 0.0f);
  for (int64_t j = 0; j < m; ++j) {
    float* row = st + j * rows;
#pragma omp simd
    for (int64_t i = 0; i < rows; ++i) row[i] *= inv[i];
  }
  small_gemm(true, rows, s.dv, m, 1.0f, st, rows, v, vw, 0.0f, out, vw);
  for (int64_t i = 0; i < rows; ++i) {
    float* orow = out + i * vw;
    if (sum[i] > 0.0f) {
      lse[i] = shift[i] + std::log(sum[i]);
    } else if (std::isnan(sum[i])) {
      std::fill(orow, orow + s.dv, std::numeric_limits<float>::quiet_NaN());
      lse[i] = std::numeric_limits<float>::quiet_NaN();
    } else {  // no keys, or all masked to -inf
      std::fill(orow, orow + s.dv, 0.0f);
      lse[i] = kNegInf;
    }
  }
}

// One item's backward (all n queries): pointers at the item's first row / key and head column.
// P is recomputed from the saved lse (the forward keeps no N x M tensor).
void small_backward_item(const AttentionShape& s, const float* dout, const float* q, const float* k,
                         const float* v, const float* out, const float* lse, const float* mask, float scale,
                         float* dq, float* dk, float* dv) {
  const int64_t qw = s.heads * s.dqk, vw = s.heads * s.dv, n = s.n, m = s.m;
  float* qt = scratch(static_cast<size_t>(n * s.dqk + n * s.dv + 2 * m * n + 2 * n));
  float* dot = qt + n * s.dqk;
  float* pt = dot + n * s.dv;
  float* dst = pt + m * n;
  float* drow = dst + m * n;
  float* shift = drow + n;
  for (int64_t i = 0; i < n; ++i) {  // D_i = sum_c dO_ic O_ic
    const float* a = dout + i * vw;
    const float* o = out + i * vw;
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int64_t c = 0; c < s.dv; ++c) acc += a[c] * o[c];
    drow[i] = acc;
  }
  transpose_into(qt, q, n, s.dqk, qw);     // Q^T (dqk x n)
  transpose_into(dot, dout, n, s.dv, vw);  // dO^T (dv x n)
  small_gemm(false, m, n, s.dqk, scale, k, qw, qt, n, 0.0f, pt, n);  // S^T = scale K Q^T
  if (mask != nullptr) add_row_mask(pt, m, n, mask);
  // P^T = exp(S^T - lse); a fully masked query (lse -inf) is shifted by +inf so its P is 0
  for (int64_t i = 0; i < n; ++i) shift[i] = lse[i] == kNegInf ? -kNegInf : lse[i];
  exp_columns(pt, m, n, shift, nullptr);
  small_gemm(false, m, s.dv, n, 1.0f, pt, n, dout, vw, 0.0f, dv, vw);     // dV = P^T dO
  small_gemm(false, m, n, s.dv, 1.0f, v, vw, dot, n, 0.0f, dst, n);       // dP^T = V dO^T
  for (int64_t j = 0; j < m; ++j) {                                       // dS^T = P^T (dP^T - D)
    const float* prow = pt + j * n;
    float* drw = dst + j * n;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) drw[i] = prow[i] * (drw[i] - drow[i]);
  }
  small_gemm(true, n, s.dqk, m, scale, dst, n, k, qw, 0.0f, dq, qw);      // dQ = scale dS K
  small_gemm(false, m, s.dqk, n, scale, dst, n, q, qw, 0.0f, dk, qw);     // dK = scale dS^T Q
}

#else
bool small_path(int64_t, int64_t, int64_t, int64_t, int64_t) { return false; }
#endif  // __AVX512F__

}  // namespace

bool attention_small_heads(const AttentionShape& s) { return small_path(s.n, s.m, s.dqk, s.dv, 0); }

int64_t attention_key_block(int64_t rows) {
  const int64_t target = (64 * 1024) / std::max<int64_t>(rows, 1);  // 64 Ki floats = 256 KiB
  return std::clamp<int64_t>((target + 15) / 16 * 16, 64, 2048);
}

namespace {

// T = float: fp32 products; T = uint16_t: bf16 q, k, v and probabilities, fp32 accumulation.
// The score tile is dense (row stride = the block's width); with bf16 and several heads so are
// the head's Q rows, each key block's K and V and the output accumulator (rows x dv).
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

  const bool direct = !kBf16 || s.heads == 1;  // operate on the head slices in place
  [[maybe_unused]] const bool small = !kBf16 && small_path(chunk_rows, s.m, s.dqk, s.dv, key_block);

  for_each_item(bh, chunks, [&](int64_t item, int64_t chunk) {
    const int64_t b = item / s.heads, h = item % s.heads;
    const int64_t r0 = chunk * chunk_rows, rows = std::min(s.n, r0 + chunk_rows) - r0;
    if (rows <= 0) return;
#if defined(__AVX512F__)
    if constexpr (!kBf16) {
      if (small) {
        small_forward_item(s, rows, q + (b * s.n + r0) * qw + h * s.dqk, k + b * s.m * qw + h * s.dqk,
                           v + b * s.m * vw + h * s.dv, mask ? mask + b * s.m : nullptr, scale,
                           out + (b * s.n + r0) * vw + h * s.dv, lse + item * s.n + r0);
        return;
      }
    }
#endif
    float* op = out + (b * s.n + r0) * vw + h * s.dv;
    float* lp = lse + item * s.n + r0;
    // fp32 scratch: score tile, running max and sum [, dense output accumulator]
    const int64_t tile_n = rows * kb, acc_n = direct ? 0 : rows * s.dv;
    float* tile = scratch(static_cast<size_t>(tile_n + 2 * rows + acc_n));
    float* run_max = tile + tile_n;
    float* run_sum = run_max + rows;
    float* acc = direct ? op : run_sum + rows;  // the output itself, or a dense accumulator
    const int64_t ldo = direct ? vw : s.dv;
    // bf16 scratch: the probabilities [, dense Q, K, V blocks]
    const int64_t q_n = direct ? 0 : rows * s.dqk, k_n = direct ? 0 : kb * s.dqk, v_n = direct ? 0 : kb * s.dv;
    uint16_t* tile16 = kBf16 ? scratch_bf16(static_cast<size_t>(tile_n + q_n + k_n + v_n)) : nullptr;
    T* qbuf = nullptr;
    if constexpr (kBf16) qbuf = tile16 + tile_n;
    T* kbuf = qbuf + q_n;
    T* vbuf = kbuf + k_n;
    int64_t ldq = 0, ldk = 0, ldv = 0;
    const T* qd = slice_for_gemm(direct, q + (b * s.n + r0) * qw + h * s.dqk, rows, s.dqk, qw, qbuf, &ldq);
    std::fill(run_max, run_max + rows, kNegInf);
    std::fill(run_sum, run_sum + rows, 0.0f);

    for (int64_t j0 = 0; j0 < s.m; j0 += kb) {
      const int64_t mb = std::min(kb, s.m - j0);
      const T* kd = slice_for_gemm(direct, k + (b * s.m + j0) * qw + h * s.dqk, mb, s.dqk, qw, kbuf, &ldk);
      scores(rows, mb, s.dqk, scale, qd, ldq, kd, ldk, mask ? mask + b * s.m + j0 : nullptr, tile, mb);
      for (int64_t i = 0; i < rows; ++i) {
        const float corr = online_softmax_row(tile + i * mb, mb, run_max[i], run_sum[i]);
        if (j0 > 0 && corr != 1.0f) {
          float* orow = acc + i * ldo;
#pragma omp simd
          for (int64_t c = 0; c < s.dv; ++c) orow[c] *= corr;
        }
      }
      // O = O * corr + P V_blk (the first block overwrites O)
      const T* vd = slice_for_gemm(direct, v + (b * s.m + j0) * vw + h * s.dv, mb, s.dv, vw, vbuf, &ldv);
      if constexpr (kBf16) {
        f32_to_bf16(tile, tile16, rows * mb);
        gemm_t(false, false, rows, s.dv, mb, 1.0f, tile16, mb, vd, ldv, j0 == 0 ? 0.0f : 1.0f, acc, ldo);
      } else {
        gemm_t(false, false, rows, s.dv, mb, 1.0f, tile, mb, vd, ldv, j0 == 0 ? 0.0f : 1.0f, acc, ldo);
      }
    }
    if (s.m == 0)
      for (int64_t i = 0; i < rows; ++i) std::fill(acc + i * ldo, acc + i * ldo + s.dv, 0.0f);
    for (int64_t i = 0; i < rows; ++i) {
      const float* arow = acc + i * ldo;
      float* orow = op + i * vw;
      if (run_sum[i] > 0.0f) {
        const float inv = 1.0f / run_sum[i];
#pragma omp simd
        for (int64_t c = 0; c < s.dv; ++c) orow[c] = arow[c] * inv;
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
// softmax recomputation and dS = P (dP - D) stay fp32. As in the forward the P and dS tiles are
// dense; with bf16 and several heads so are the head slices and the dQ, dK, dV accumulators.
template <typename T>
void attention_backward_impl(const AttentionShape& s, const float* dout, const T* q, const T* k, const T* v,
                             const T* out, const float* lse, const float* mask, float scale, float* dq,
                             float* dk, float* dv, int64_t key_block) {
  constexpr bool kBf16 = std::is_same_v<T, uint16_t>;
  const int64_t qw = s.heads * s.dqk, vw = s.heads * s.dv, bh = s.batch * s.heads;
  if (bh == 0) return;
  const int64_t kb = key_block > 0 ? key_block : attention_key_block(s.n);
  const bool direct = !kBf16 || s.heads == 1;  // operate on the head slices in place
  [[maybe_unused]] const bool small = !kBf16 && small_path(s.n, s.m, s.dqk, s.dv, key_block);

  for_each_item(bh, 1, [&](int64_t item, int64_t) {
    const int64_t b = item / s.heads, h = item % s.heads, n = s.n;
#if defined(__AVX512F__)
    if constexpr (!kBf16) {
      if (small) {
        small_backward_item(s, dout + b * n * vw + h * s.dv, q + b * n * qw + h * s.dqk,
                            k + b * s.m * qw + h * s.dqk, v + b * s.m * vw + h * s.dv, out + b * n * vw + h * s.dv,
                            lse + item * n, mask ? mask + b * s.m : nullptr, scale, dq + b * n * qw + h * s.dqk,
                            dk + b * s.m * qw + h * s.dqk, dv + b * s.m * vw + h * s.dv);
        return;
      }
    }
#endif
    const float* dop = dout + b * n * vw + h * s.dv;
    const T* op = out + b * n * vw + h * s.dv;
    const float* lp = lse + item * n;
    float* dqp = dq + b * n * qw + h * s.dqk;
    // fp32 scratch: P and dS tiles, D, one row of O [, dense dQ, dK, dV accumulators]
    const int64_t tile_n = n * kb, do_n = n * s.dv;
    const int64_t q_n = direct ? 0 : n * s.dqk, k_n = direct ? 0 : kb * s.dqk, v_n = direct ? 0 : kb * s.dv;
    float* p_tile = scratch(static_cast<size_t>(2 * tile_n + n + s.dv + q_n + k_n + v_n));
    float* ds_tile = p_tile + tile_n;
    float* drow = ds_tile + tile_n;
    float* orow = drow + n;
    float* dq_acc = direct ? dqp : orow + s.dv;
    float* dk_buf = orow + s.dv + q_n;
    float* dv_buf = dk_buf + k_n;
    const int64_t ldq = direct ? qw : s.dqk, ldk = direct ? qw : s.dqk, ldv = direct ? vw : s.dv;
    // bf16 scratch: dO, P and dS tiles [, dense Q, K, V]
    uint16_t* do16 = kBf16 ? scratch_bf16(static_cast<size_t>(do_n + 2 * tile_n + q_n + k_n + v_n)) : nullptr;
    uint16_t* p16 = kBf16 ? do16 + do_n : nullptr;
    uint16_t* ds16 = kBf16 ? p16 + tile_n : nullptr;
    T* qbuf = nullptr;
    if constexpr (kBf16) qbuf = ds16 + tile_n;
    T* kbuf = qbuf + q_n;
    T* vbuf = kbuf + k_n;
    int64_t ldqd = 0, ldkd = 0, ldvd = 0;
    const T* qd = slice_for_gemm(direct, q + b * n * qw + h * s.dqk, n, s.dqk, qw, qbuf, &ldqd);

    for (int64_t i = 0; i < n; ++i) {  // D_i = sum_c dO_ic O_ic
      const float* a = dop + i * vw;
      const float* o;
      if constexpr (kBf16) {
        bf16_to_f32(op + i * vw, orow, s.dv);
        o = orow;
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
      for (int64_t i = 0; i < n; ++i) std::fill(dq_acc + i * ldq, dq_acc + i * ldq + s.dqk, 0.0f);

    for (int64_t j0 = 0; j0 < s.m; j0 += kb) {
      const int64_t mb = std::min(kb, s.m - j0);
      const T* kd = slice_for_gemm(direct, k + (b * s.m + j0) * qw + h * s.dqk, mb, s.dqk, qw, kbuf, &ldkd);
      const T* vd = slice_for_gemm(direct, v + (b * s.m + j0) * vw + h * s.dv, mb, s.dv, vw, vbuf, &ldvd);
      float* dvp = direct ? dv + (b * s.m + j0) * vw + h * s.dv : dv_buf;
      float* dkp = direct ? dk + (b * s.m + j0) * qw + h * s.dqk : dk_buf;
      scores(n, mb, s.dqk, scale, qd, ldqd, kd, ldkd, mask ? mask + b * s.m + j0 : nullptr, p_tile, mb);
      for (int64_t i = 0; i < n; ++i) probabilities_row(p_tile + i * mb, mb, lp[i]);
      // dV_blk = P^T dO ; dP = dO V_blk^T
      if constexpr (kBf16) {
        f32_to_bf16(p_tile, p16, n * mb);
        gemm_t(true, false, mb, s.dv, n, 1.0f, p16, mb, do16, s.dv, 0.0f, dvp, ldv);
        gemm_t(false, true, n, mb, s.dv, 1.0f, do16, s.dv, vd, ldvd, 0.0f, ds_tile, mb);
      } else {
        gemm_t(true, false, mb, s.dv, n, 1.0f, p_tile, mb, dop, vw, 0.0f, dvp, ldv);
        gemm_t(false, true, n, mb, s.dv, 1.0f, dop, vw, vd, ldvd, 0.0f, ds_tile, mb);
      }
      // dS = P (dP - D) in place
      for (int64_t i = 0; i < n; ++i) {
        const float* prow = p_tile + i * mb;
        float* dsrow = ds_tile + i * mb;
        const float d = drow[i];
#pragma omp simd
        for (int64_t j = 0; j < mb; ++j) dsrow[j] = prow[j] * (dsrow[j] - d);
      }
      // dQ += scale dS K_blk ; dK_blk = scale dS^T Q
      if constexpr (kBf16) {
        f32_to_bf16(ds_tile, ds16, n * mb);
        gemm_t(false, false, n, s.dqk, mb, scale, ds16, mb, kd, ldkd, j0 == 0 ? 0.0f : 1.0f, dq_acc, ldq);
        gemm_t(true, false, mb, s.dqk, n, scale, ds16, mb, qd, ldqd, 0.0f, dkp, ldk);
      } else {
        gemm_t(false, false, n, s.dqk, mb, scale, ds_tile, mb, kd, ldkd, j0 == 0 ? 0.0f : 1.0f, dq_acc, ldq);
        gemm_t(true, false, mb, s.dqk, n, scale, ds_tile, mb, qd, ldqd, 0.0f, dkp, ldk);
      }
      if (!direct) {
        unpack_rows(dv + (b * s.m + j0) * vw + h * s.dv, vw, dv_buf, mb, s.dv);
        unpack_rows(dk + (b * s.m + j0) * qw + h * s.dqk, qw, dk_buf, mb, s.dqk);
      }
    }
    if (!direct) unpack_rows(dqp, qw, dq_acc, n, s.dqk);
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
