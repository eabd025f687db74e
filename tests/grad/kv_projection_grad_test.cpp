// ops::kv_projection_backward against central finite differences of the double reference
// forward (the rows [x, s] written out, LayerNorm, the key and value projections), for x, the
// LayerNorm's weight and bias and both projections: f = sum dk . K + sum dv . V.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/reference/kv_projection.h"
#include "ops/op_test_util.h"
#include "perceiver/ops/kv_projection.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::fd_grad;
using testing::randn;
using testing::to_double;

constexpr float kEps = 1e-5f;

struct GradCase {
  int64_t b, m, cx, cs, dk, dv;
};

class KvProjectionGrad : public ::testing::TestWithParam<GradCase> {};

TEST_P(KvProjectionGrad, MatchesFiniteDifferences) {
  const GradCase c = GetParam();
  const int64_t ch = c.cx + c.cs, rows = c.b * c.m;
  const Tensor x = randn({c.b, c.m, c.cx}, 81), s = randn({c.m, c.cs}, 82), ln_w = randn({ch}, 83),
               ln_b = randn({ch}, 84), wk = randn({c.dk, ch}, 85), bk = randn({c.dk}, 86), wv = randn({c.dv, ch}, 87),
               bv = randn({c.dv}, 88), dk = randn({c.b, c.m, c.dk}, 89), dv = randn({c.b, c.m, c.dv}, 90);
  const ops::KvProjectionOut out = ops::kv_projection(x, s, ln_w, ln_b, kEps, wk, bk, wv, bv);
  const ops::KvProjectionGrads g = ops::kv_projection_backward(dk, dv, x, s, ln_w, ln_b, wk, wv, out.mean, out.rstd, true);

  std::vector<std::vector<double>> args = {to_double(x),  to_double(ln_w), to_double(ln_b), to_double(wk),
                                           to_double(bk), to_double(wv),   to_double(bv)};
  const std::vector<double> sd = to_double(s);
  std::vector<double> w = to_double(dk);
  const std::vector<double> dvd = to_double(dv);
  w.insert(w.end(), dvd.begin(), dvd.end());  // weights of [K, V] flattened
  // [K, V] in double with argument `which` replaced by `value`
  auto forward = [&](size_t which, const std::vector<double>& value) {
    std::vector<std::vector<double>> a = args;
    a[which] = value;
    std::vector<double> kv(static_cast<size_t>(rows * (c.dk + c.dv)));
    ref::kv_projection_forward(kv.data(), kv.data() + rows * c.dk, a[0].data(), sd.data(), a[1].data(), a[2].data(),
                               a[3].data(), a[4].data(), a[5].data(), a[6].data(), double(kEps), c.b, c.m, c.cx, c.cs,
                               c.dk, c.dv);
    return kv;
  };
  const Tensor* got[] = {&g.dx, &g.dln_w, &g.dln_b, &g.dwk, &g.dbk, &g.dwv, &g.dbv};
  const char* names[] = {"dx", "dln_w", "dln_b", "dwk", "dbk", "dwv", "dbv"};
  for (size_t i = 0; i < args.size(); ++i) {
    const auto numeric = fd_grad([&](const std::vector<double>& v) { return forward(i, v); }, args[i], w);
    EXPECT_TRUE(all_close(*got[i], numeric, 4 * f32_tol(rows * (ch + c.dk + c.dv)), names[i]));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, KvProjectionGrad,
                         ::testing::Values(GradCase{1, 1, 1, 2, 1, 1}, GradCase{2, 3, 1, 5, 2, 3},
                                           GradCase{2, 4, 3, 6, 4, 5}));

}  // namespace
}  // namespace perceiver
