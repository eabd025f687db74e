// ops::attention and the blocked cpu kernel against the double-precision reference: odd shapes,
// v width != q width, additive masks (incl. masked-out keys), several key blocks (online
// softmax), every GEMM provider, fully masked queries, and shape errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/isa.h"
#include "kernels/reference/attention.h"
#include "perceiver/core/gemm_provider.h"
#include "perceiver/core/parallel.h"
#include "perceiver/ops/attention.h"
#include "testing/compare.h"
#include "testing/errors.h"
#include "testing/provider_scope.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::expect_error;
using testing::f32_tol;
using testing::randn;
using testing::ProviderScope;
using testing::to_double;

constexpr float kInf = std::numeric_limits<float>::infinity();

struct Case {
  int64_t batch, n, m, heads, dqk, dv;
  Tensor q, k, v, mask;
};

Case make_case(int64_t batch, int64_t n, int64_t m, int64_t heads, int64_t dqk, int64_t dv,
               bool with_mask, uint64_t seed) {
  Case c{batch, n, m, heads, dqk, dv, {}, {}, {}, {}};
  c.q = randn({batch, n, heads * dqk}, seed);
  c.k = randn({batch, m, heads * dqk}, seed + 1);
  c.v = randn({batch, m, heads * dv}, seed + 2);
  if (with_mask) {
    c.mask = randn({batch, m}, seed + 3, 0.5f);
    float* mp = c.mask.f32();
    mp[0] = -1e9f;          // batch 0: first key dropped (finite large negative, HF style)
    if (batch > 1) mp[m + m / 2] = -kInf;  // batch 1: a key dropped with -inf
  }
  return c;
}

float scale_of(const Case& c) { return 1.0f / std::sqrt(static_cast<float>(c.dqk)); }

struct Ref {
  std::vector<double> out, lse;
};

Ref reference_of(const Case& c) {
  Ref r;
  r.out.resize(c.batch * c.n * c.heads * c.dv);
  r.lse.resize(c.batch * c.heads * c.n);
  const std::vector<double> q = to_double(c.q), k = to_double(c.k), v = to_double(c.v);
  std::vector<double> mask = c.mask.defined() ? to_double(c.mask) : std::vector<double>();
  reference::attention_forward<double>({c.batch, c.n, c.m, c.heads, c.dqk, c.dv}, q.data(),
                                       k.data(), v.data(), mask.empty() ? nullptr : mask.data(),
                                       scale_of(c), r.out.data(), r.lse.data());
  return r;
}

double out_tol(const Case& c) { return f32_tol(c.m + c.dqk, 16); }

void expect_matches_reference(const Case& c, const std::string& what) {
  const ops::AttentionOut got =
      ops::attention(c.q, c.k, c.v, static_cast<int>(c.heads), scale_of(c), c.mask);
  ASSERT_EQ(got.out.shape(), (Shape{c.batch, c.n, c.heads * c.dv}));
  ASSERT_EQ(got.lse.shape(), (Shape{c.batch, c.heads, c.n}));
  const Ref r = reference_of(c);
  EXPECT_TRUE(all_close(got.out, r.out, out_tol(c), what + " out"));
  EXPECT_TRUE(all_close(got.lse, r.lse, out_tol(c), what + " lse"));
}

TEST(AttentionTest, OddShapesNoMaskEveryProvider) {
  const Case c = make_case(2, 5, 37, 3, 7, 11, false, 100);
  for (GemmProvider p : {GemmProvider::kOneDNN, GemmProvider::kOpenBLAS, GemmProvider::kNaive}) {
    ProviderScope scope(p);
    expect_matches_reference(c, gemm_provider_name(p));
  }
}

TEST(AttentionTest, OddShapesWithMaskedKeys) {
  expect_matches_reference(make_case(2, 5, 37, 3, 7, 11, true, 200), "masked");
}

TEST(AttentionTest, SingleHeadCrossAttention) {
  expect_matches_reference(make_case(1, 9, 50, 1, 16, 5, true, 300), "one head");
}

// The op with more keys than one default block (N = 5 queries -> 2048-key blocks).
TEST(AttentionTest, MoreKeysThanOneBlock) {
  const Case c = make_case(2, 5, 2100, 2, 4, 3, true, 400);
  ASSERT_GT(c.m, cpu::attention_key_block(c.n));
  ASSERT_FALSE(cpu::attention_small_heads({c.batch, c.n, c.m, c.heads, c.dqk, c.dv}));  // 5 queries: blocked
  expect_matches_reference(c, "M > key block");
}

// The kernel with tiny key blocks: many online-softmax rescaling steps, a partial last block.
TEST(AttentionTest, KernelSmallKeyBlocksOnlineSoftmax) {
  const Case c = make_case(2, 5, 37, 3, 7, 11, true, 500);
  const Ref r = reference_of(c);
  for (int64_t block : {1, 8, 16, 64}) {
    Tensor out = Tensor::empty({c.batch, c.n, c.heads * c.dv});
    Tensor lse = Tensor::empty({c.batch, c.heads, c.n});
    cpu::attention_forward({c.batch, c.n, c.m, c.heads, c.dqk, c.dv}, c.q.f32(), c.k.f32(),
                           c.v.f32(), c.mask.f32(), scale_of(c), out.f32(), lse.f32(), block);
    const std::string what = "block " + std::to_string(block);
    EXPECT_TRUE(all_close(out, r.out, out_tol(c), what + " out"));
    EXPECT_TRUE(all_close(lse, r.lse, out_tol(c), what + " lse"));
  }
}

// Narrow heads whose score tile fits in L2 take the kernels' small-head path (one block of keys,
// transposed scores); wider heads or bigger tiles the blocked path. Both, and the boundaries
// between them (head dims 64 / 65, score tiles of 64 Ki / 64 Ki + queries floats), against the
// reference; the gradients of each against the blocked kernel with one explicit key block.
TEST(AttentionTest, SmallHeadAndBlockedPathsMatchReference) {
  struct Dims { int64_t batch, n, m, heads, dqk, dv; bool small; };
  const bool avx512 = cpu::kernel_isa() == cpu::KernelIsa::kAvx512;
  for (const Dims& d : {Dims{3, 50, 50, 4, 32, 32, true}, Dims{2, 32, 784, 1, 35, 35, true},
                        Dims{2, 17, 19, 2, 64, 64, true}, Dims{2, 17, 19, 2, 65, 9, false},
                        Dims{1, 64, 1024, 1, 8, 8, true}, Dims{1, 64, 1025, 1, 8, 8, false},
                        Dims{2, 16, 40, 1, 8, 8, true}, Dims{2, 15, 40, 1, 8, 8, false},
                        Dims{2, 1, 2, 1, 3, 70, false}}) {
    const Case c = make_case(d.batch, d.n, d.m, d.heads, d.dqk, d.dv, true, 700 + d.m);
    const std::string what = "B" + std::to_string(d.batch) + " N" + std::to_string(d.n) + " M" +
                             std::to_string(d.m) + " H" + std::to_string(d.heads) + " Dqk" +
                             std::to_string(d.dqk) + " Dv" + std::to_string(d.dv);
    EXPECT_EQ(cpu::attention_small_heads({d.batch, d.n, d.m, d.heads, d.dqk, d.dv}), avx512 && d.small) << what;
    expect_matches_reference(c, what);
    // backward: the op (whichever path) vs the blocked kernel with every key in one block
    const ops::AttentionOut fw = ops::attention(c.q, c.k, c.v, static_cast<int>(d.heads), scale_of(c), c.mask);
    const Tensor dout = randn(fw.out.shape(), 701);
    const ops::AttentionGrads g = ops::attention_backward(dout, c.q, c.k, c.v, fw.out, fw.lse,
                                                          static_cast<int>(d.heads), scale_of(c), c.mask);
    const cpu::AttentionShape s{d.batch, d.n, d.m, d.heads, d.dqk, d.dv};
    Tensor dq = Tensor::empty(c.q.shape()), dk = Tensor::empty(c.k.shape()), dv = Tensor::empty(c.v.shape());
    cpu::attention_backward(s, dout.f32(), c.q.f32(), c.k.f32(), c.v.f32(), fw.out.f32(), fw.lse.f32(),
                            c.mask.f32(), scale_of(c), dq.f32(), dk.f32(), dv.f32(), d.m);
    const double tol = f32_tol(d.m + d.n + d.dqk + d.dv, 32);
    EXPECT_TRUE(all_close(g.dq, to_double(dq), tol, what + " dq"));
    EXPECT_TRUE(all_close(g.dk, to_double(dk), tol, what + " dk"));
    EXPECT_TRUE(all_close(g.dv, to_double(dv), tol, what + " dv"));
  }
}

// The forward's rows split across threads (one batch, one head) give the bits of one thread on
// the small-head path; on the blocked path, whose row splits go through the library GEMM (bits
// may depend on its row count), the reference's tolerance.
TEST(AttentionTest, ThreadsGiveTheSameBits) {
  const Case c = make_case(1, 50, 50, 1, 32, 32, true, 800);
  const bool small = cpu::attention_small_heads({c.batch, c.n, c.m, c.heads, c.dqk, c.dv});
  const int before = num_threads();
  std::vector<std::vector<float>> outs;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    const ops::AttentionOut fw = ops::attention(c.q, c.k, c.v, 1, scale_of(c), c.mask);
    outs.push_back(fw.out.to_vector());
    std::vector<float> lse = fw.lse.to_vector();
    outs.back().insert(outs.back().end(), lse.begin(), lse.end());
  }
  set_num_threads(before);
  for (size_t t = 1; t < outs.size(); ++t) {
    if (small) EXPECT_EQ(outs[0], outs[t]) << t + 1 << " threads";
    else EXPECT_TRUE(all_close(outs[t], std::vector<double>(outs[0].begin(), outs[0].end()), out_tol(c),
                               std::to_string(t + 1) + " threads"));
  }
}

// Queries whose keys are all masked with -inf: out = 0, lse = -inf, gradients 0, no NaN.
TEST(AttentionTest, FullyMaskedBatchGivesZeros) {
  for (int64_t n : {3, 16}) {  // the blocked path, and the small-head path where the ISA has it
  SCOPED_TRACE("N " + std::to_string(n));
  Case c = make_case(2, n, 6, 2, 4, 5, true, 600);
  float* mp = c.mask.f32();
  for (int64_t j = 0; j < c.m; ++j) mp[c.m + j] = -kInf;  // batch 1 sees no keys
  const ops::AttentionOut fw = ops::attention(c.q, c.k, c.v, 2, scale_of(c), c.mask);
  const Ref r = reference_of(c);
  EXPECT_TRUE(all_close(fw.out, r.out, out_tol(c), "out"));  // batch 1 rows are exactly 0
  const std::vector<float> lse = fw.lse.to_vector();
  const size_t half = lse.size() / 2;
  EXPECT_TRUE(all_close(std::vector<float>(lse.begin(), lse.begin() + half),
                        std::vector<double>(r.lse.begin(), r.lse.begin() + half), out_tol(c),
                        "batch 0 lse"));
  for (size_t i = half; i < lse.size(); ++i) EXPECT_EQ(lse[i], -kInf);
  const ops::AttentionGrads g = ops::attention_backward(randn(fw.out.shape(), 601), c.q, c.k, c.v,
                                                        fw.out, fw.lse, 2, scale_of(c), c.mask);
  for (const Tensor& t : {g.dq, g.dk, g.dv}) {
    const std::vector<float> x = t.to_vector();
    for (float e : x) ASSERT_TRUE(std::isfinite(e));
    for (size_t i = x.size() / 2; i < x.size(); ++i) ASSERT_EQ(x[i], 0.0f) << i;  // batch 1
  }
  }
}

// A NaN anywhere in a query's inputs makes that query's output NaN (never a finite value that
// hides it): in q, in k, in v, in the mask; several key blocks; f32 and bf16; forward and backward.
TEST(AttentionTest, NaNPropagatesInsteadOfBeingDropped) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // 5 queries: the blocked path; 20: the small-head path where the ISA has it (fp32)
  for (int64_t N : {5, 20})
  for (Precision p : {Precision::kF32, Precision::kBF16}) {
    for (const char* where : {"q", "k", "v", "mask", "k_inf"}) {
      Case c = make_case(2, N, 300, 2, 8, 8, true, 71);
      const int64_t key = 250;  // a key late in the sequence
      if (std::string(where) == "q") c.q.f32()[(1 * N + 2) * 16 + 3] = nan;  // batch 1, query 2, head 0
      if (std::string(where) == "k") c.k.f32()[1 * 300 * 16 + key * 16 + 1] = nan;
      if (std::string(where) == "k_inf") {
        c.k.f32()[1 * 300 * 16 + key * 16 + 1] = kInf;
        c.q.f32()[(1 * N + 2) * 16 + 1] = 1.0f;  // query 2: q.k = +inf
      }
      if (std::string(where) == "v") c.v.f32()[1 * 300 * 16 + key * 16 + 2] = nan;
      if (std::string(where) == "mask") c.mask.f32()[1 * 300 + key] = nan;
      SCOPED_TRACE(std::string(where) + (p == Precision::kBF16 ? " bf16" : " f32") + " N " + std::to_string(N));
      const ops::AttentionOut r = ops::attention(c.q, c.k, c.v, 2, scale_of(c), c.mask, p);
      const float* o = r.out.f32();
      // A bad query: its head-0 output (batch 1, query 2, columns 0..7) is NaN. A bad key: the
      // outputs of batch 1 hold NaN (an inf key gives -inf scores, a legitimate mask, for the
      // queries with q.k < 0, and NaN for the others).
      bool any_nan = false;
      if (std::string(where) == "q" || std::string(where) == "k_inf")
        for (int64_t col = 0; col < 8; ++col) any_nan = any_nan || std::isnan(o[(1 * N + 2) * 16 + col]);
      else
        for (int64_t i = N * 16; i < 2 * N * 16; ++i) any_nan = any_nan || std::isnan(o[i]);
      EXPECT_TRUE(any_nan);
      // batch 0 is untouched and finite.
      for (int64_t i = 0; i < N * 16; ++i) ASSERT_TRUE(std::isfinite(o[i])) << i;
      if (p == Precision::kF32 && std::string(where) != "k_inf") {
        const ops::AttentionGrads g = ops::attention_backward(Tensor::full(r.out.shape(), 1.0f), c.q, c.k, c.v, r.out,
                                                              r.lse, 2, scale_of(c), c.mask);
        bool grad_nan = false;
        for (int64_t i = 0; i < g.dq.numel(); ++i) grad_nan = grad_nan || std::isnan(g.dq.f32()[i]);
        EXPECT_TRUE(grad_nan);
      }
    }
  }
}

TEST(AttentionTest, ShapeErrors) {
  const Tensor q = randn({2, 5, 12}, 1), k = randn({2, 7, 12}, 2), v = randn({2, 7, 6}, 3);
  expect_error([&] { ops::attention(q, k, v, 5, 1.0f, Tensor()); },
               "[attention] q width 12 is not divisible by heads 5");
  expect_error([&] { ops::attention(q, k, randn({2, 7, 8}, 4), 3, 1.0f, Tensor()); },
               "[attention] v width 8 is not divisible by heads 3");
  expect_error([&] { ops::attention(q, randn({3, 7, 12}, 4), v, 3, 1.0f, Tensor()); },
               "[attention] batch dims differ");
  expect_error([&] { ops::attention(q, k, randn({2, 6, 6}, 4), 3, 1.0f, Tensor()); },
               "[attention] k and v must have the same number of keys");
  expect_error([&] { ops::attention(q, randn({2, 7, 9}, 4), v, 3, 1.0f, Tensor()); },
               "[attention] q and k widths differ");
  expect_error([&] { ops::attention(q, k, v, 3, 1.0f, randn({2, 5}, 4)); },
               "[attention] key_mask must be (B, M) = [2, 7], got [2, 5]");
  expect_error([&] { ops::attention(randn({5, 12}, 4), k, v, 3, 1.0f, Tensor()); },
               "[attention] q must be (B, N, H*Dqk)");
  expect_error([&] { ops::attention(q, k, v, 0, 1.0f, Tensor()); },
               "[attention] heads must be >= 1");
  const ops::AttentionOut fw = ops::attention(q, k, v, 3, 1.0f, Tensor());
  expect_error(
      [&] { ops::attention_backward(randn({2, 5, 7}, 5), q, k, v, fw.out, fw.lse, 3, 1.0f, Tensor()); },
      "[attention] dout must have shape [2, 5, 6], got [2, 5, 7]");
  expect_error(
      [&] { ops::attention_backward(fw.out, q, k, v, fw.out, randn({2, 5, 3}, 6), 3, 1.0f, Tensor()); },
      "[attention] lse must have shape [2, 3, 5]");
}

}  // namespace
}  // namespace perceiver
