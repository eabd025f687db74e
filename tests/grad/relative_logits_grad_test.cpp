// BoTNet's attention logits through the tape: relative_logits_backward against central finite
// differences of the double reference; ag::matmul (every transpose combination, and an operand
// shared across the batch) and ag::softmax against finite differences of double forwards; and
// the whole logits expression scale * Q^T K + rel(Q) as BoTNet forms it.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/reference/relative_logits.h"
#include "ops/op_test_util.h"
#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/ops/relative_logits.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::fd_grad;
using testing::randn;
using testing::to_double;

TEST(RelativeLogitsGrad, MatchesFiniteDifferences) {
  const int64_t n = 2, h = 3, w = 4, hw = 12;
  Tensor rw = randn({n, hw, 2 * w - 1}, 61), rh = randn({n, hw, 2 * h - 1}, 62);
  rw.set_requires_grad(true);
  rh.set_requires_grad(true);
  const Tensor y = ag::relative_logits(rw, rh, h, w);
  const Tensor dy = randn(y.shape(), 63);
  autograd::backward(y, dy);
  const auto rwd = to_double(rw), rhd = to_double(rh), dyd = to_double(dy);
  const auto nrw = fd_grad(
      [&](const std::vector<double>& v) {
        std::vector<double> out(dyd.size());
        ref::relative_logits_forward(out.data(), v.data(), rhd.data(), n, h, w);
        return out;
      },
      rwd, dyd);
  const auto nrh = fd_grad(
      [&](const std::vector<double>& v) {
        std::vector<double> out(dyd.size());
        ref::relative_logits_forward(out.data(), rwd.data(), v.data(), n, h, w);
        return out;
      },
      rhd, dyd);
  EXPECT_TRUE(all_close(rw.grad(), nrw, 4 * f32_tol(static_cast<int>(h)), "drw"));
  EXPECT_TRUE(all_close(rh.grad(), nrh, 4 * f32_tol(static_cast<int>(w)), "drh"));
}

// Double forward of op(A) op(B) with optional batch on either side (stride 0 = shared).
std::vector<double> matmul_ref(const std::vector<double>& a, const std::vector<double>& b, int64_t batch,
                               bool a_batched, bool b_batched, int64_t m, int64_t n, int64_t k, bool ta, bool tb) {
  std::vector<double> c(static_cast<size_t>(batch * m * n), 0.0);
  for (int64_t z = 0; z < batch; ++z)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p) {
          const double av = a[(a_batched ? z * m * k : 0) + (ta ? p * m + i : i * k + p)];
          const double bv = b[(b_batched ? z * k * n : 0) + (tb ? j * k + p : p * n + j)];
          s += av * bv;
        }
        c[(z * m + i) * n + j] = s;
      }
  return c;
}

struct MatmulCase {
  bool ta, tb, a_batched, b_batched;
};

class MatmulGrad : public ::testing::TestWithParam<MatmulCase> {};

TEST_P(MatmulGrad, MatchesFiniteDifferences) {
  const MatmulCase c = GetParam();
  const int64_t batch = 3, m = 4, n = 5, k = 6;
  const Shape a2 = c.ta ? Shape{k, m} : Shape{m, k}, b2 = c.tb ? Shape{n, k} : Shape{k, n};
  Shape as = a2, bs = b2;
  if (c.a_batched) as.insert(as.begin(), batch);
  if (c.b_batched) bs.insert(bs.begin(), batch);
  Tensor a = randn(as, 71), b = randn(bs, 72);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  const Tensor y = ag::matmul(a, b, c.ta, c.tb);
  const Tensor dy = randn(y.shape(), 73);
  autograd::backward(y, dy);
  const auto ad = to_double(a), bd = to_double(b), dyd = to_double(dy);
  const auto na = fd_grad([&](const std::vector<double>& v) {
    return matmul_ref(v, bd, batch, c.a_batched, c.b_batched, m, n, k, c.ta, c.tb);
  }, ad, dyd);
  const auto nb = fd_grad([&](const std::vector<double>& v) {
    return matmul_ref(ad, v, batch, c.a_batched, c.b_batched, m, n, k, c.ta, c.tb);
  }, bd, dyd);
  EXPECT_TRUE(all_close(a.grad(), na, 4 * f32_tol(static_cast<int>(batch * n)), "da"));
  EXPECT_TRUE(all_close(b.grad(), nb, 4 * f32_tol(static_cast<int>(batch * m)), "db"));
}

INSTANTIATE_TEST_SUITE_P(Transposes, MatmulGrad,
                         ::testing::Values(MatmulCase{false, false, true, true}, MatmulCase{true, false, true, true},
                                           MatmulCase{false, true, true, true}, MatmulCase{true, true, true, true},
                                           MatmulCase{true, true, true, false},    // BoTNet: Q^T rel^T
                                           MatmulCase{false, true, false, true}, MatmulCase{true, false, true, false},
                                           MatmulCase{false, false, false, false}));

TEST(SoftmaxGrad, MatchesFiniteDifferences) {
  Tensor x = randn({2, 3, 7}, 81);
  x.set_requires_grad(true);
  const Tensor y = ag::softmax(x);
  const Tensor dy = randn(y.shape(), 82);
  autograd::backward(y, dy);
  const auto xd = to_double(x), dyd = to_double(dy);
  const auto nx = fd_grad(
      [&](const std::vector<double>& v) {
        std::vector<double> out(v.size());
        for (size_t r = 0; r < v.size() / 7; ++r) {
          double mx = -1e300, s = 0;
          for (int j = 0; j < 7; ++j) mx = std::max(mx, v[r * 7 + j]);
          for (int j = 0; j < 7; ++j) s += std::exp(v[r * 7 + j] - mx);
          for (int j = 0; j < 7; ++j) out[r * 7 + j] = std::exp(v[r * 7 + j] - mx) / s;
        }
        return out;
      },
      xd, dyd);
  EXPECT_TRUE(all_close(x.grad(), nx, 4 * f32_tol(7), "dx"));
}

// BoTNet's logits for one head-batch: qT (n, D, HW) and kT (n, D, HW) as the 1x1 qkv
// convolution lays them out, logits = scale qT^T kT + rel(qT^T width_rel^T, qT^T height_rel^T):
// the gradients of q, k and both tables against finite differences of a double forward.
TEST(RelativeLogitsGrad, BotnetLogitsMatchFiniteDifferences) {
  const int64_t n = 2, d = 3, h = 2, w = 3, hw = 6;
  const float scale = 0.7f;
  Tensor q = randn({n, d, hw}, 91), k = randn({n, d, hw}, 92), wr = randn({2 * w - 1, d}, 93),
         hr = randn({2 * h - 1, d}, 94);
  for (Tensor* t : {&q, &k, &wr, &hr}) t->set_requires_grad(true);
  const Tensor logits = ag::add(ag::scale(ag::matmul(q, k, true, false), scale),
                                ag::relative_logits(ag::matmul(q, wr, true, true), ag::matmul(q, hr, true, true), h, w));
  const Tensor dy = randn(logits.shape(), 95);
  autograd::backward(logits, dy);
  auto forward = [&](const std::vector<double>& qv, const std::vector<double>& kv, const std::vector<double>& wv,
                     const std::vector<double>& hv) {
    std::vector<double> out(static_cast<size_t>(n * hw * hw));
    for (int64_t z = 0; z < n; ++z)
      for (int64_t i = 0; i < hw; ++i)
        for (int64_t j = 0; j < hw; ++j) {
          const int64_t ih = i / w, iw = i % w, jh = j / w, jw = j % w;
          double s = 0, rel = 0;
          for (int64_t c = 0; c < d; ++c) {
            const double qi = qv[(z * d + c) * hw + i];
            s += qi * kv[(z * d + c) * hw + j];
            rel += qi * (wv[(jw - iw + w - 1) * d + c] + hv[(jh - ih + h - 1) * d + c]);
          }
          out[(z * hw + i) * hw + j] = scale * s + rel;
        }
    return out;
  };
  const auto qd = to_double(q), kd = to_double(k), wd = to_double(wr), hd = to_double(hr), dyd = to_double(dy);
  const double tol = 4 * f32_tol(static_cast<int>(2 * hw));
  EXPECT_TRUE(all_close(q.grad(), fd_grad([&](const auto& v) { return forward(v, kd, wd, hd); }, qd, dyd), tol, "dq"));
  EXPECT_TRUE(all_close(k.grad(), fd_grad([&](const auto& v) { return forward(qd, v, wd, hd); }, kd, dyd), tol, "dk"));
  EXPECT_TRUE(all_close(wr.grad(), fd_grad([&](const auto& v) { return forward(qd, kd, v, hd); }, wd, dyd),
                        4 * f32_tol(static_cast<int>(n * hw * h)), "dwidth_rel"));
  EXPECT_TRUE(all_close(hr.grad(), fd_grad([&](const auto& v) { return forward(qd, kd, wd, v); }, hd, dyd),
                        4 * f32_tol(static_cast<int>(n * hw * w)), "dheight_rel"));
}

}  // namespace
}  // namespace perceiver
