// Mixed-precision (bf16) training ops: ops::linear_backward with bf16 operands against the double
// products of the rounded operands (fp32 accumulation: fp32 accuracy), cpu/ops attention backward
// in bf16 against the fp32 backward of the same rounded q, k, v (the only differences are the
// roundings of dO, P and dS to bf16 before their products: a few bf16 units relative to the
// gradient's size), and the autograd rules (ag::linear / ag::attention with Precision::kBF16)
// against fp32 gradients of the same chain.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/reference/gemm.h"
#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/tape.h"
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

constexpr double kBf16Eps = 1.0 / 256;  // 2^-8

Tensor rounded(const Tensor& x) { return ops::to_f32(ops::to_bf16(x)); }

// rows x cin -> cout; the second shape has more rows than one bf16 block of dy (1,024 rows at
// cout 1,024): dx per block, dw accumulated over three blocks, the last one ragged
struct LinearShape {
  int64_t rows, cin, cout;
};

class Bf16LinearBackward : public ::testing::TestWithParam<LinearShape> {};

TEST_P(Bf16LinearBackward, MatchesDoubleProductsOfRoundedOperands) {
  const LinearShape sh = GetParam();
  for (GemmProvider p : {GemmProvider::kOneDNN, GemmProvider::kOpenBLAS, GemmProvider::kNaive}) {
    if (p == GemmProvider::kNaive && sh.rows > 1000) continue;  // the naive loops: small shapes only
    ProviderScope scope(p);
    const int64_t rows = sh.rows, cin = sh.cin, cout = sh.cout;
    const Tensor x = randn({1, rows, cin}, 30), w = randn({cout, cin}, 31, 0.2f), dy = randn({1, rows, cout}, 32);
    const ops::LinearGrads g = ops::linear_backward(dy, ops::to_bf16(x), ops::to_bf16(w), true, true, true);
    ASSERT_EQ(g.dx.shape(), x.shape());
    ASSERT_EQ(g.dw.shape(), w.shape());
    ASSERT_EQ(g.dx.dtype(), DType::kF32);
    const std::vector<double> xd = to_double(rounded(x)), wd = to_double(rounded(w)), dyd = to_double(rounded(dy));
    std::vector<double> dx(rows * cin, 0.0), dw(cout * cin, 0.0), db(cout, 0.0);
    reference::gemm<double>(false, false, rows, cin, cout, 1.0, dyd.data(), cout, wd.data(), cin, 0.0, dx.data(), cin);
    reference::gemm<double>(true, false, cout, cin, rows, 1.0, dyd.data(), cout, xd.data(), cin, 0.0, dw.data(), cin);
    const std::vector<double> dy_exact = to_double(dy);  // the bias gradient sums the fp32 dy
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cout; ++j) db[j] += dy_exact[r * cout + j];
    const std::string what = gemm_provider_name(p);
    EXPECT_TRUE(all_close(g.dx, dx, f32_tol(cout), what + " dx"));
    EXPECT_TRUE(all_close(g.dw, dw, f32_tol(rows), what + " dw"));
    EXPECT_TRUE(all_close(g.db, db, f32_tol(rows), what + " db"));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Bf16LinearBackward,
                         ::testing::Values(LinearShape{111, 45, 29}, LinearShape{2500, 16, 1024}));

TEST(Bf16LinearBackwardErrors, NeedsXSavedInBf16) {
  // bf16 w needs x saved in bf16 (the forward's copy)
  EXPECT_THROW(ops::linear_backward(randn({4, 3}, 1), randn({4, 8}, 2), ops::to_bf16(randn({3, 8}, 3)), true, true,
                                    false),
               Error);
}

struct AttnCase {
  int64_t batch, n, m, heads, dqk, dv;
  bool mask;
  int64_t key_block;
};

void check_attention_backward_bf16(const AttnCase& c, uint64_t seed) {
  const Tensor q = rounded(randn({c.batch, c.n, c.heads * c.dqk}, seed));
  const Tensor k = rounded(randn({c.batch, c.m, c.heads * c.dqk}, seed + 1));
  const Tensor v = rounded(randn({c.batch, c.m, c.heads * c.dv}, seed + 2));
  const Tensor dout = randn({c.batch, c.n, c.heads * c.dv}, seed + 3);
  Tensor mask;
  if (c.mask) {
    mask = randn({c.batch, c.m}, seed + 4, 0.5f);
    mask.f32()[2] = -1e9f;
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.dqk));
  const int heads = static_cast<int>(c.heads);
  // fp32 forward and backward of the (exactly representable) rounded operands: the oracle
  const ops::AttentionOut f = ops::attention(q, k, v, heads, scale, mask);
  const ops::AttentionGrads ref = ops::attention_backward(dout, q, k, v, f.out, f.lse, heads, scale, mask);
  // the mixed-precision backward of the bf16 copies, through the kernel with a given key block
  const Tensor q16 = ops::to_bf16(q), k16 = ops::to_bf16(k), v16 = ops::to_bf16(v), o16 = ops::to_bf16(f.out);
  Tensor dq = Tensor::empty(q.shape()), dk = Tensor::empty(k.shape()), dv = Tensor::empty(v.shape());
  cpu::attention_backward_bf16({c.batch, c.n, c.m, c.heads, c.dqk, c.dv}, dout.f32(), q16.bf16(), k16.bf16(),
                               v16.bf16(), o16.bf16(), f.lse.f32(), c.mask ? mask.f32() : nullptr, scale, dq.f32(),
                               dk.f32(), dv.f32(), c.key_block);
  const std::string what = "B" + std::to_string(c.batch) + " N" + std::to_string(c.n) + " M" + std::to_string(c.m) +
                           " H" + std::to_string(c.heads) + " kb" + std::to_string(c.key_block);
  // dO, P, dS (and O inside D) are each rounded once: a few bf16 units of the gradient's size.
  // dV = P^T dO is the loosest: a probability near 1 rounds by up to 2^-9 absolute, which is
  // several % of the typical (small) dV entry; measured worst 1.9% of |ref| + rms here.
  EXPECT_TRUE(all_close(dv, to_double(ref.dv), 8 * kBf16Eps, what + " dv"));
  EXPECT_TRUE(all_close(dq, to_double(ref.dq), 4 * kBf16Eps, what + " dq"));
  EXPECT_TRUE(all_close(dk, to_double(ref.dk), 4 * kBf16Eps, what + " dk"));
  // not the fp32 computation in disguise
  EXPECT_NE(dq.to_vector(), ref.dq.to_vector()) << what;
  if (c.key_block == 0) {  // the op dispatches on the dtype and gives the kernel's result
    const ops::AttentionGrads op = ops::attention_backward(dout, q16, k16, v16, o16, f.lse, heads, scale, mask);
    EXPECT_EQ(op.dq.to_vector(), dq.to_vector()) << what;
    EXPECT_EQ(op.dk.to_vector(), dk.to_vector()) << what;
    EXPECT_EQ(op.dv.to_vector(), dv.to_vector()) << what;
  }
}

TEST(Bf16AttentionBackward, CloseToF32BackwardOfRoundedOperands) {
  check_attention_backward_bf16({2, 5, 37, 3, 7, 11, false, 0}, 100);
  check_attention_backward_bf16({2, 9, 200, 2, 16, 8, true, 16}, 200);   // 13 key blocks, ragged last
  check_attention_backward_bf16({1, 64, 300, 4, 32, 32, true, 64}, 300);
  check_attention_backward_bf16({3, 1, 50, 1, 5, 3, true, 0}, 400);      // one query per sample
  check_attention_backward_bf16({2, 33, 33, 4, 16, 16, false, 0}, 500);  // self-attention shape
}

TEST(Bf16AttentionBackward, RejectsMixedDtypes) {
  const Tensor q = randn({1, 4, 8}, 1), k = randn({1, 6, 8}, 2), v = randn({1, 6, 8}, 3);
  const ops::AttentionOut f = ops::attention(q, k, v, 2, 0.5f, Tensor());
  const Tensor dout = randn({1, 4, 8}, 4);
  // bf16 q, k, v with an fp32 output, and one fp32 operand among bf16 ones
  EXPECT_THROW(ops::attention_backward(dout, ops::to_bf16(q), ops::to_bf16(k), ops::to_bf16(v), f.out, f.lse, 2, 0.5f,
                                       Tensor()),
               Error);
  EXPECT_THROW(ops::attention_backward(dout, ops::to_bf16(q), k, ops::to_bf16(v), ops::to_bf16(f.out), f.lse, 2, 0.5f,
                                       Tensor()),
               Error);
}

// loss = sum(r * linear2(attention(linear_q(x), linear_k(x), linear_v(x)))): the gradients of
// every weight and of x, mixed precision vs fp32.
struct Chain {
  Tensor x, wq, wk, wv, wo, bo, r;
};

std::vector<Tensor> chain_grads(const Chain& c, Precision p) {
  std::vector<Tensor> leaves = {c.x.clone(), c.wq.clone(), c.wk.clone(), c.wv.clone(), c.wo.clone(), c.bo.clone()};
  for (Tensor& t : leaves) t.set_requires_grad(true);
  // mixed precision rounds x once for its three products (ag::to_bf16: the gradient passes through)
  const Tensor xs = p == Precision::kBF16 ? ag::to_bf16(leaves[0]) : leaves[0];
  if (p == Precision::kBF16) EXPECT_EQ(xs.dtype(), DType::kBF16);
  const Tensor q = ag::linear(xs, leaves[1], Tensor(), p);
  const Tensor k = ag::linear(xs, leaves[2], Tensor(), p);
  const Tensor v = ag::linear(xs, leaves[3], Tensor(), p);
  const Tensor a = ag::attention(q, k, v, 4, 0.25f, Tensor(), p);
  const Tensor y = ag::linear(a, leaves[4], leaves[5], p);
  const Tensor loss = ag::reshape(ag::mean(ag::reshape(ag::mul(y, c.r), {1, y.numel()}), 1), {});
  autograd::backward(loss);
  std::vector<Tensor> g;
  for (const Tensor& t : leaves) g.push_back(t.grad());
  return g;
}

TEST(Bf16Autograd, MixedGradientsAreCloseToF32) {
  Chain c{randn({2, 24, 32}, 1), randn({64, 32}, 2, 0.2f), randn({64, 32}, 3, 0.2f), randn({64, 32}, 4, 0.2f),
          randn({16, 64}, 5, 0.15f), randn({16}, 6), randn({2, 24, 16}, 7)};
  const std::vector<Tensor> f32 = chain_grads(c, Precision::kF32), mixed = chain_grads(c, Precision::kBF16);
  const char* names[] = {"x", "wq", "wk", "wv", "wo", "bo"};
  for (size_t i = 0; i < f32.size(); ++i) {
    ASSERT_TRUE(mixed[i].defined()) << names[i];
    EXPECT_EQ(mixed[i].dtype(), DType::kF32) << names[i];
    // every operand and product rounded to bf16 once or twice along the chain: within 8 bf16
    // units (3%) of |g| + the gradient's RMS, and not bit-equal to fp32
    EXPECT_TRUE(all_close(mixed[i], to_double(f32[i]), 8 * kBf16Eps, names[i]));
    if (std::string(names[i]) == "bo")  // the bias gradient sums the fp32 dy: exact
      EXPECT_EQ(mixed[i].to_vector(), f32[i].to_vector());
    else
      EXPECT_NE(mixed[i].to_vector(), f32[i].to_vector()) << names[i];
  }
}

}  // namespace
}  // namespace perceiver
