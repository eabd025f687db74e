// attention_backward (op and blocked kernel) against central finite differences of the
// double-precision reference forward: f(q, k, v) = sum_i c_i * attention(q, k, v)_i for a fixed
// random c, with and without an additive key mask that drops a key.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/reference/attention.h"
#include "perceiver/ops/attention.h"
#include "testing/compare.h"
#include "testing/gradcheck.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::dot;
using testing::f32_tol;
using testing::numerical_grad;
using testing::randn;
using testing::to_double;

struct GradCase {
  reference::AttentionDims d;
  Tensor q, k, v, mask, dout;
  float scale;
};

GradCase make_case(bool with_mask, uint64_t seed) {
  const reference::AttentionDims d{2, 3, 6, 2, 3, 4};  // B, N, M, H, Dqk, Dv
  GradCase c{d, randn({d.batch, d.n, d.heads * d.dqk}, seed),
             randn({d.batch, d.m, d.heads * d.dqk}, seed + 1),
             randn({d.batch, d.m, d.heads * d.dv}, seed + 2), Tensor(),
             randn({d.batch, d.n, d.heads * d.dv}, seed + 3), 1.0f / std::sqrt(3.0f)};
  if (with_mask) {
    c.mask = randn({d.batch, d.m}, seed + 4, 0.5f);
    c.mask.f32()[d.m + 2] = -1e9f;  // batch 1, key 2 dropped
  }
  return c;
}

struct Numerical {
  std::vector<double> dq, dk, dv;
};

Numerical numerical_grads(const GradCase& c) {
  const std::vector<double> q = to_double(c.q), k = to_double(c.k), v = to_double(c.v),
                            w = to_double(c.dout);
  const std::vector<double> mask = c.mask.defined() ? to_double(c.mask) : std::vector<double>();
  auto f = [&](const std::vector<double>& qq, const std::vector<double>& kk,
               const std::vector<double>& vv) {
    std::vector<double> out(w.size()), lse(c.d.batch * c.d.heads * c.d.n);
    reference::attention_forward<double>(c.d, qq.data(), kk.data(), vv.data(),
                                         mask.empty() ? nullptr : mask.data(), c.scale, out.data(),
                                         lse.data());
    return dot(w, out);
  };
  Numerical g;
  g.dq = numerical_grad([&](const std::vector<double>& x) { return f(x, k, v); }, q);
  g.dk = numerical_grad([&](const std::vector<double>& x) { return f(q, x, v); }, k);
  g.dv = numerical_grad([&](const std::vector<double>& x) { return f(q, k, x); }, v);
  return g;
}

double grad_tol(const GradCase& c) { return f32_tol(c.d.n + c.d.m + c.d.dqk + c.d.dv, 16); }

void expect_grads(const ops::AttentionGrads& g, const Numerical& num, const GradCase& c,
                  const std::string& what) {
  EXPECT_TRUE(all_close(g.dq, num.dq, grad_tol(c), what + " dq"));
  EXPECT_TRUE(all_close(g.dk, num.dk, grad_tol(c), what + " dk"));
  EXPECT_TRUE(all_close(g.dv, num.dv, grad_tol(c), what + " dv"));
}

TEST(AttentionGradTest, BackwardMatchesFiniteDifferences) {
  for (bool with_mask : {false, true}) {
    const GradCase c = make_case(with_mask, with_mask ? 20 : 10);
    const int heads = static_cast<int>(c.d.heads);
    const ops::AttentionOut fw = ops::attention(c.q, c.k, c.v, heads, c.scale, c.mask);
    const ops::AttentionGrads g = ops::attention_backward(c.dout, c.q, c.k, c.v, fw.out, fw.lse,
                                                          heads, c.scale, c.mask);
    expect_grads(g, numerical_grads(c), c, with_mask ? "masked" : "unmasked");
  }
}

// Key blocks of 1, 4 and 64 keys: dQ accumulates over blocks, dK/dV are written per block.
TEST(AttentionGradTest, KernelKeyBlocksMatchFiniteDifferences) {
  const GradCase c = make_case(true, 30);
  const Numerical num = numerical_grads(c);
  const cpu::AttentionShape s{c.d.batch, c.d.n, c.d.m, c.d.heads, c.d.dqk, c.d.dv};
  for (int64_t block : {1, 4, 64}) {
    Tensor out = Tensor::empty(c.dout.shape()), lse = Tensor::empty({c.d.batch, c.d.heads, c.d.n});
    cpu::attention_forward(s, c.q.f32(), c.k.f32(), c.v.f32(), c.mask.f32(), c.scale, out.f32(),
                           lse.f32(), block);
    ops::AttentionGrads g{Tensor::empty(c.q.shape()), Tensor::empty(c.k.shape()),
                          Tensor::empty(c.v.shape())};
    cpu::attention_backward(s, c.dout.f32(), c.q.f32(), c.k.f32(), c.v.f32(), out.f32(),
                            lse.f32(), c.mask.f32(), c.scale, g.dq.f32(), g.dk.f32(), g.dv.f32(),
                            block);
    expect_grads(g, num, c, "block " + std::to_string(block));
  }
}

}  // namespace
}  // namespace perceiver
