// ops::kv_projection (keys and values of [own, shared] input rows through LayerNorm) against the
// double reference that writes the rows out, on odd shapes, 1 and 2 threads; backward against the
// reference chain; the same bits run to run; errors.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/reference/kv_projection.h"
#include "ops/op_test_util.h"
#include "perceiver/core/parallel.h"
#include "perceiver/ops/kv_projection.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::randn;
using testing::throws_op_error;
using testing::to_double;

constexpr float kEps = 1e-5f;

struct KvCase {
  int64_t b, m, cx, cs, dk, dv;
};

std::string name(const KvCase& c) {
  return "B" + std::to_string(c.b) + " M" + std::to_string(c.m) + " Cx" + std::to_string(c.cx) + " Cs" +
         std::to_string(c.cs) + " Dk" + std::to_string(c.dk) + " Dv" + std::to_string(c.dv);
}

// t + c elementwise
Tensor shifted(const Tensor& t, float c) {
  Tensor out = t.clone();
  for (int64_t i = 0; i < out.numel(); ++i) out.f32()[i] += c;
  return out;
}

// Arguments of one case: inputs with a non-zero mean (the decomposition's cancellation), LayerNorm
// weights away from 1 and 0.
struct KvArgs {
  Tensor x, s, ln_w, ln_b, wk, bk, wv, bv, dk, dv;
  explicit KvArgs(const KvCase& c) {
    const int64_t ch = c.cx + c.cs;
    x = shifted(randn({c.b, c.m, c.cx}, 61), 0.5f);
    s = randn({c.m, c.cs}, 62);
    ln_w = shifted(randn({ch}, 63), 1.0f);
    ln_b = randn({ch}, 64);
    wk = randn({c.dk, ch}, 65);
    bk = randn({c.dk}, 66);
    wv = randn({c.dv, ch}, 67);
    bv = randn({c.dv}, 68);
    dk = randn({c.b, c.m, c.dk}, 69);
    dv = randn({c.b, c.m, c.dv}, 70);
  }
};

class KvProjection : public ::testing::TestWithParam<KvCase> {};

TEST_P(KvProjection, ForwardAndBackwardMatchReference) {
  const KvCase c = GetParam();
  const KvArgs a(c);
  const int64_t ch = c.cx + c.cs, rows = c.b * c.m;
  const auto xd = to_double(a.x), sd = to_double(a.s), wd = to_double(a.ln_w), bd = to_double(a.ln_b);
  const auto wkd = to_double(a.wk), bkd = to_double(a.bk), wvd = to_double(a.wv), bvd = to_double(a.bv);
  const auto dkd = to_double(a.dk), dvd = to_double(a.dv);
  std::vector<double> k(rows * c.dk), v(rows * c.dv);
  ref::kv_projection_forward(k.data(), v.data(), xd.data(), sd.data(), wd.data(), bd.data(), wkd.data(), bkd.data(),
                             wvd.data(), bvd.data(), double(kEps), c.b, c.m, c.cx, c.cs, c.dk, c.dv);
  std::vector<double> dx(rows * c.cx), dgam(ch), dbet(ch), dwk(c.dk * ch), dbk(c.dk), dwv(c.dv * ch), dbv(c.dv);
  ref::kv_projection_backward(dx.data(), dgam.data(), dbet.data(), dwk.data(), dbk.data(), dwv.data(), dbv.data(),
                              dkd.data(), dvd.data(), xd.data(), sd.data(), wd.data(), bd.data(), wkd.data(),
                              wvd.data(), double(kEps), c.b, c.m, c.cx, c.cs, c.dk, c.dv);
  const int before = num_threads();
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    const std::string what = name(c) + ", " + std::to_string(threads) + " threads";
    const ops::KvProjectionOut out = ops::kv_projection(a.x, a.s, a.ln_w, a.ln_b, kEps, a.wk, a.bk, a.wv, a.bv);
    EXPECT_EQ(out.k.shape(), (Shape{c.b, c.m, c.dk}));
    EXPECT_TRUE(all_close(out.k, k, f32_tol(ch), "k")) << what;
    EXPECT_TRUE(all_close(out.v, v, f32_tol(ch), "v")) << what;
    const ops::KvProjectionGrads g = ops::kv_projection_backward(a.dk, a.dv, a.x, a.s, a.ln_w, a.ln_b, a.wk, a.wv,
                                                                 out.mean, out.rstd, true);
    EXPECT_TRUE(all_close(g.dx, dx, 4 * f32_tol(ch + c.dk + c.dv), "dx")) << what;
    EXPECT_TRUE(all_close(g.dln_w, dgam, 4 * f32_tol(rows * (c.dk + c.dv)), "dln_w")) << what;
    EXPECT_TRUE(all_close(g.dln_b, dbet, 4 * f32_tol(rows * (c.dk + c.dv)), "dln_b")) << what;
    EXPECT_TRUE(all_close(g.dwk, dwk, 4 * f32_tol(rows), "dwk")) << what;
    EXPECT_TRUE(all_close(g.dbk, dbk, 4 * f32_tol(rows), "dbk")) << what;
    EXPECT_TRUE(all_close(g.dwv, dwv, 4 * f32_tol(rows), "dwv")) << what;
    EXPECT_TRUE(all_close(g.dbv, dbv, 4 * f32_tol(rows), "dbv")) << what;
    // the same bits on a second run
    const ops::KvProjectionGrads again = ops::kv_projection_backward(a.dk, a.dv, a.x, a.s, a.ln_w, a.ln_b, a.wk,
                                                                     a.wv, out.mean, out.rstd, false);
    EXPECT_FALSE(again.dx.defined());
    EXPECT_EQ(again.dwk.to_vector(), g.dwk.to_vector()) << what;
    EXPECT_EQ(again.dln_w.to_vector(), g.dln_w.to_vector()) << what;
  }
  set_num_threads(before);
}

INSTANTIATE_TEST_SUITE_P(Shapes, KvProjection,
                         ::testing::Values(KvCase{1, 1, 1, 2, 1, 1}, KvCase{2, 5, 1, 7, 3, 4},
                                           KvCase{3, 37, 4, 9, 5, 11},
                                           KvCase{2, 200, 1, 34, 35, 35},   // the FMNIST cross-attention's
                                           KvCase{2, 70, 81, 34, 16, 24},   // 9 x 9 patches
                                           KvCase{3, 700, 2, 5, 17, 3}),    // rows for two threads
                         [](const auto& info) {
                           const KvCase& c = info.param;
                           return "B" + std::to_string(c.b) + "M" + std::to_string(c.m) + "Cx" + std::to_string(c.cx) +
                                  "Cs" + std::to_string(c.cs);
                         });

// An output that no gradient reached counts as zero.
TEST(KvProjectionOp, UndefinedGradientIsZero) {
  const KvCase c{2, 9, 3, 5, 4, 6};
  const KvArgs a(c);
  const ops::KvProjectionOut out = ops::kv_projection(a.x, a.s, a.ln_w, a.ln_b, kEps, a.wk, a.bk, a.wv, a.bv);
  const ops::KvProjectionGrads only_v = ops::kv_projection_backward(Tensor(), a.dv, a.x, a.s, a.ln_w, a.ln_b, a.wk,
                                                                    a.wv, out.mean, out.rstd, true);
  const ops::KvProjectionGrads zero_k = ops::kv_projection_backward(
      Tensor::zeros(out.k.shape()), a.dv, a.x, a.s, a.ln_w, a.ln_b, a.wk, a.wv, out.mean, out.rstd, true);
  EXPECT_EQ(only_v.dx.to_vector(), zero_k.dx.to_vector());
  EXPECT_EQ(only_v.dwv.to_vector(), zero_k.dwv.to_vector());
  for (float g : only_v.dwk.to_vector()) EXPECT_EQ(g, 0.0f);
}

// No examples, or no inputs: empty keys and values, zero gradients.
TEST(KvProjectionOp, EmptyBatchOrInputs) {
  for (const KvCase& c : {KvCase{0, 9, 3, 5, 4, 6}, KvCase{2, 0, 3, 5, 4, 6}}) {
    const KvArgs a(c);
    const ops::KvProjectionOut out = ops::kv_projection(a.x, a.s, a.ln_w, a.ln_b, kEps, a.wk, a.bk, a.wv, a.bv);
    EXPECT_EQ(out.k.shape(), (Shape{c.b, c.m, c.dk}));
    EXPECT_EQ(out.v.numel(), 0);
    const ops::KvProjectionGrads g = ops::kv_projection_backward(a.dk, a.dv, a.x, a.s, a.ln_w, a.ln_b, a.wk, a.wv,
                                                                 out.mean, out.rstd, true);
    for (const Tensor* t : {&g.dln_w, &g.dln_b, &g.dwk, &g.dbk, &g.dwv, &g.dbv})
      for (float v : t->to_vector()) EXPECT_EQ(v, 0.0f);
  }
}

TEST(KvProjectionOp, RejectsBadShapes) {
  const KvArgs a(KvCase{2, 9, 3, 5, 4, 6});
  auto run = [&](const Tensor& x, const Tensor& s, const Tensor& ln_w, const Tensor& wk, const Tensor& bv) {
    return [=] { ops::kv_projection(x, s, ln_w, a.ln_b, kEps, wk, a.bk, a.wv, bv); };
  };
  EXPECT_TRUE(throws_op_error(run(randn({2, 9}, 1), a.s, a.ln_w, a.wk, a.bv), "kv_projection"));        // x rank
  EXPECT_TRUE(throws_op_error(run(a.x, randn({8, 5}, 1), a.ln_w, a.wk, a.bv), "kv_projection"));        // s's M
  EXPECT_TRUE(throws_op_error(run(a.x, a.s, randn({7}, 1), a.wk, a.bv), "kv_projection"));              // ln width
  EXPECT_TRUE(throws_op_error(run(a.x, a.s, a.ln_w, randn({4, 7}, 1), a.bv), "kv_projection"));         // wk width
  EXPECT_TRUE(throws_op_error(run(a.x, a.s, a.ln_w, a.wk, randn({5}, 1)), "kv_projection"));            // bv
  EXPECT_TRUE(throws_op_error(run(a.x, Tensor::empty({9, 0}), a.ln_w, a.wk, a.bv), "kv_projection"));   // Cs 0
  EXPECT_TRUE(throws_op_error(
      [&] { ops::kv_projection(a.x, a.s, a.ln_w, a.ln_b, 0.0f, a.wk, a.bk, a.wv, a.bv); }, "kv_projection"));
  const ops::KvProjectionOut out = ops::kv_projection(a.x, a.s, a.ln_w, a.ln_b, kEps, a.wk, a.bk, a.wv, a.bv);
  EXPECT_TRUE(throws_op_error(
      [&] {
        ops::kv_projection_backward(randn({2, 9, 5}, 1), a.dv, a.x, a.s, a.ln_w, a.ln_b, a.wk, a.wv, out.mean,
                                    out.rstd, true);
      },
      "kv_projection"));
  EXPECT_TRUE(throws_op_error(
      [&] {
        ops::kv_projection_backward(a.dk, a.dv, a.x, a.s, a.ln_w, a.ln_b, a.wk, a.wv, randn({9}, 1), out.rstd, true);
      },
      "kv_projection"));
}

}  // namespace
}  // namespace perceiver
