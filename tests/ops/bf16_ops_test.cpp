// bf16 ops: ops::to_bf16 / to_f32, ops::linear with bfloat16 weights, and ops::attention /
// cpu::attention_forward_bf16 (several key blocks, masks, odd head widths); their mixed-precision
// backwards are in bf16_train_test.cpp.
// The oracle is the double-precision op on the bf16-rounded operands; the GEMMs accumulate in
// fp32, so linear must match to fp32 accuracy, and attention to the rounding of the
// probabilities to bf16 (relative 2^-9) before P V.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/reference/attention.h"
#include "kernels/reference/gemm.h"
#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/gemm_provider.h"
#include "perceiver/ops/attention.h"
#include "perceiver/ops/convert.h"
#include "perceiver/ops/linear.h"
#include "testing/compare.h"
#include "testing/provider_scope.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::randn;
using testing::ProviderScope;
using testing::to_double;

constexpr double kBf16Eps = 1.0 / 256;  // 2^-8: unit roundoff of bf16 (8-bit significand)

// x rounded to bf16 and back (the values the bf16 kernels multiply).
Tensor rounded(const Tensor& x) { return ops::to_f32(ops::to_bf16(x)); }

// Round to nearest moves a value by at most half a bf16 ulp, 2^-8 |x|; truncation moves it up to
// a whole ulp (2^-7 |x| for significands near 1), so this per-element bound tells them apart
// (all_close's tol * (|x| + rms) would not, for |x| below the rms).
std::vector<double> half_ulp_bounds(const Tensor& x) {
  std::vector<double> b = to_double(x);
  for (double& v : b) v = kBf16Eps * std::fabs(v);
  return b;
}

TEST(Bf16Convert, ShapesDtypesAndErrors) {
  const Tensor x = randn({3, 5, 7}, 1);
  const Tensor h = ops::to_bf16(x);
  EXPECT_EQ(h.dtype(), DType::kBF16);
  EXPECT_EQ(h.shape(), x.shape());
  const Tensor back = ops::to_f32(h);
  EXPECT_TRUE(testing::all_within(back, to_double(x), half_ulp_bounds(x), "round trip"));
  EXPECT_TRUE(ops::to_f32(x).same_storage(x));
  EXPECT_THROW(ops::to_bf16(h), Error);
  EXPECT_THROW(ops::to_bf16(Tensor()), Error);
  // big enough for the threaded path
  const Tensor big = randn({1 << 19}, 2);
  EXPECT_TRUE(testing::all_within(ops::to_f32(ops::to_bf16(big)), to_double(big), half_ulp_bounds(big), "big"));
  // the bound rejects plain truncation (dropping the low 16 bits) of the same values
  Tensor truncated = big.clone();
  for (int64_t i = 0; i < truncated.numel(); ++i) {
    uint32_t u;
    std::memcpy(&u, truncated.f32() + i, 4);
    u &= 0xffff0000u;
    std::memcpy(truncated.f32() + i, &u, 4);
  }
  EXPECT_FALSE(testing::all_within(truncated, to_double(big), half_ulp_bounds(big), "truncated"));
}

TEST(Bf16Linear, MatchesDoubleLinearOfRoundedOperands) {
  for (GemmProvider p : {GemmProvider::kOneDNN, GemmProvider::kOpenBLAS, GemmProvider::kNaive}) {
    ProviderScope scope(p);
    const Tensor x = randn({3, 7, 45}, 10), w = randn({29, 45}, 11, 0.2f), b = randn({29}, 12);
    const Tensor y = ops::linear(x, ops::to_bf16(w), b);
    ASSERT_EQ(y.shape(), (Shape{3, 7, 29}));
    const std::vector<double> xd = to_double(rounded(x)), wd = to_double(rounded(w));
    std::vector<double> ref(21 * 29);
    const std::vector<double> bd = to_double(b);
    for (int r = 0; r < 21; ++r)
      for (int j = 0; j < 29; ++j) ref[r * 29 + j] = bd[j];
    reference::gemm<double>(false, true, 21, 29, 45, 1.0, xd.data(), 45, wd.data(), 45, 1.0,
                            ref.data(), 29);
    EXPECT_TRUE(all_close(y, ref, f32_tol(45), gemm_provider_name(p)));
  }
}

TEST(Bf16Linear, RejectedUnderGradAndInBackward) {
  const Tensor x = randn({4, 8}, 20), w16 = ops::to_bf16(randn({3, 8}, 21));
  Tensor b = randn({3}, 22);
  b.set_requires_grad(true);
  try {
    ag::linear(x, w16, b);
    ADD_FAILURE() << "expected an error for bf16 weights with gradients on";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[linear] bf16 weights are inference-only"), std::string::npos)
        << e.what();
  }
  {
    autograd::NoGradGuard no_grad;
    EXPECT_EQ(ag::linear(x, w16, b).shape(), (Shape{4, 3}));
  }
  EXPECT_THROW(ops::linear_backward(randn({4, 3}, 23), x, w16, true, false, false), Error);
}

struct AttnCase {
  int64_t batch, n, m, heads, dqk, dv;
  bool mask;
};

void check_attention_bf16(const AttnCase& c, int64_t key_block, uint64_t seed) {
  const Tensor q = randn({c.batch, c.n, c.heads * c.dqk}, seed);
  const Tensor k = randn({c.batch, c.m, c.heads * c.dqk}, seed + 1);
  const Tensor v = randn({c.batch, c.m, c.heads * c.dv}, seed + 2);
  Tensor mask;
  if (c.mask) {
    mask = randn({c.batch, c.m}, seed + 3, 0.5f);
    mask.f32()[1] = -1e9f;
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.dqk));
  // oracle: double attention of the rounded q, k, v
  const std::vector<double> qd = to_double(rounded(q)), kd = to_double(rounded(k)),
                            vd = to_double(rounded(v));
  std::vector<double> md = c.mask ? to_double(mask) : std::vector<double>();
  std::vector<double> out(c.batch * c.n * c.heads * c.dv), lse(c.batch * c.heads * c.n);
  reference::attention_forward<double>({c.batch, c.n, c.m, c.heads, c.dqk, c.dv}, qd.data(),
                                       kd.data(), vd.data(), md.empty() ? nullptr : md.data(),
                                       scale, out.data(), lse.data());
  Tensor got_out = Tensor::empty({c.batch, c.n, c.heads * c.dv});
  Tensor got_lse = Tensor::empty({c.batch, c.heads, c.n});
  const Tensor q16 = ops::to_bf16(q), k16 = ops::to_bf16(k), v16 = ops::to_bf16(v);
  cpu::attention_forward_bf16({c.batch, c.n, c.m, c.heads, c.dqk, c.dv}, q16.bf16(), k16.bf16(),
                              v16.bf16(), c.mask ? mask.f32() : nullptr, scale, got_out.f32(),
                              got_lse.f32(), key_block);
  const std::string what = "B" + std::to_string(c.batch) + " N" + std::to_string(c.n) + " M" +
                           std::to_string(c.m) + " H" + std::to_string(c.heads) + " kb" +
                           std::to_string(key_block);
  // scores are exact products accumulated in fp32; P is rounded to bf16 before P V
  EXPECT_TRUE(all_close(got_lse, lse, f32_tol(c.dqk + c.m, 16), what + " lse"));
  EXPECT_TRUE(all_close(got_out, out, 2 * kBf16Eps, what + " out"));
  if (key_block == 0) {  // the op gives the same as the kernel
    const ops::AttentionOut op =
        ops::attention(q, k, v, static_cast<int>(c.heads), scale, mask, Precision::kBF16);
    EXPECT_EQ(op.out.to_vector(), got_out.to_vector()) << what;
  }
}

TEST(Bf16Attention, MatchesDoubleAttentionOfRoundedOperands) {
  check_attention_bf16({2, 5, 37, 3, 7, 11, false}, 0, 100);
  check_attention_bf16({2, 9, 200, 2, 16, 8, true}, 16, 200);  // 13 key blocks, ragged last
  check_attention_bf16({1, 64, 300, 4, 32, 32, true}, 64, 300);
  check_attention_bf16({3, 1, 50, 1, 5, 3, true}, 0, 400);     // one query per sample
  check_attention_bf16({1, 64, 300, 1, 8, 8, true}, 0, 500);   // one (b, h): rows split over threads
}

TEST(Bf16Attention, DiffersFromF32AndRecordsTheMixedBackwardUnderGrad) {
  Tensor q = randn({1, 4, 16}, 1), k = randn({1, 9, 16}, 2), v = randn({1, 9, 16}, 3);
  const ops::AttentionOut f = ops::attention(q, k, v, 2, 0.25f, Tensor());
  const ops::AttentionOut h = ops::attention(q, k, v, 2, 0.25f, Tensor(), Precision::kBF16);
  EXPECT_NE(f.out.to_vector(), h.out.to_vector()) << "the bf16 path was not taken";
  EXPECT_TRUE(all_close(h.out, to_double(f.out), 4 * kBf16Eps, "bf16 vs f32"));
  q.set_requires_grad(true);
  // under grad the bf16 forward is the same computation (q, k, v rounded once)
  EXPECT_EQ(ag::attention(q, k, v, 2, 0.25f, Tensor(), Precision::kBF16).to_vector(), h.out.to_vector());
  autograd::NoGradGuard no_grad;
  EXPECT_EQ(ag::attention(q, k, v, 2, 0.25f, Tensor(), Precision::kBF16).shape(), (Shape{1, 4, 16}));
}

}  // namespace
}  // namespace perceiver
