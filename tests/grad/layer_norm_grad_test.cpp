// ops::layer_norm_backward against central finite differences of the double reference forward,
// for x, w and b: f = sum_i dy_i * ref_layer_norm(x, w, b)_i.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/reference/layer_norm.h"
#include "ops/op_test_util.h"
#include "perceiver/ops/layer_norm.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::fd_grad;
using testing::randn;
using testing::to_double;

constexpr float kEps = 1e-5f;

class LayerNormGrad : public ::testing::TestWithParam<Shape> {};

TEST_P(LayerNormGrad, MatchesFiniteDifferences) {
  const Shape shape = GetParam();
  const int64_t C = shape.back(), rows = shape_numel(shape) / C;
  Tensor x = randn(shape, 21), w = randn({C}, 22), b = randn({C}, 23), dy = randn(shape, 24);
  ops::LayerNormOut out = ops::layer_norm(x, w, b, kEps);
  ops::LayerNormGrads g = ops::layer_norm_backward(dy, x, w, out.mean, out.rstd);

  const std::vector<double> xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy);
  // Forward in double with one argument replaced.
  auto fwd = [&](const std::vector<double>& xv, const std::vector<double>& wv,
                 const std::vector<double>& bv) {
    std::vector<double> y(xv.size()), m(rows), s(rows);
    ref::layer_norm_forward(y.data(), m.data(), s.data(), xv.data(), wv.data(), bv.data(), rows, C,
                            static_cast<double>(kEps));
    return y;
  };
  const auto ndx = fd_grad([&](const std::vector<double>& v) { return fwd(v, wd, bd); }, xd, dyd);
  const auto ndw = fd_grad([&](const std::vector<double>& v) { return fwd(xd, v, bd); }, wd, dyd);
  const auto ndb = fd_grad([&](const std::vector<double>& v) { return fwd(xd, wd, v); }, bd, dyd);
  EXPECT_TRUE(all_close(g.dx, ndx, 4 * f32_tol(C), "dx"));
  EXPECT_TRUE(all_close(g.dw, ndw, 4 * f32_tol(rows * C), "dw"));
  EXPECT_TRUE(all_close(g.db, ndb, 4 * f32_tol(rows), "db"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, LayerNormGrad,
                         ::testing::Values(Shape{1, 1}, Shape{3, 7}, Shape{5, 17, 33},
                                           Shape{2, 3, 129}));

}  // namespace
}  // namespace perceiver
