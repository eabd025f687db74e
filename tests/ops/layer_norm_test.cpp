// ops::layer_norm and layer_norm_backward (AVX-512 kernels) against the double reference on odd
// shapes, shifted data and threaded sizes; shape and dtype errors.
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
using testing::randn;
using testing::throws_op_error;
using testing::to_double;

constexpr float kEps = 1e-5f;

struct RefOut {
  std::vector<double> y, mean, rstd;
};

RefOut ref_forward(const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t C = x.dim(-1), rows = x.numel() / C;
  RefOut r{std::vector<double>(x.numel()), std::vector<double>(rows), std::vector<double>(rows)};
  const std::vector<double> xd = to_double(x), wd = to_double(w), bd = to_double(b);
  ref::layer_norm_forward(r.y.data(), r.mean.data(), r.rstd.data(), xd.data(), wd.data(), bd.data(),
                          rows, C, static_cast<double>(kEps));
  return r;
}

class LayerNormOp : public ::testing::TestWithParam<Shape> {};

TEST_P(LayerNormOp, ForwardMatchesReference) {
  const Shape shape = GetParam();
  const int64_t C = shape.back();
  // Shifted, scaled data: mean 3, std 2 per element.
  Tensor x = randn(shape, 1, 2.0f);
  float* px = x.f32();
  for (int64_t i = 0; i < x.numel(); ++i) px[i] += 3.0f;
  Tensor w = randn({C}, 2), b = randn({C}, 3);
  ops::LayerNormOut out = ops::layer_norm(x, w, b, kEps);
  ASSERT_EQ(out.y.shape(), shape);
  ASSERT_EQ(out.mean.shape(), Shape{x.numel() / C});
  const RefOut ref = ref_forward(x, w, b);
  // Conditioning of x - mean adds a factor ~ |mean| / std = 1.5.
  EXPECT_TRUE(all_close(out.y, ref.y, 2 * f32_tol(C), "y"));
  EXPECT_TRUE(all_close(out.mean, ref.mean, f32_tol(C), "mean"));
  EXPECT_TRUE(all_close(out.rstd, ref.rstd, f32_tol(C), "rstd"));
}

TEST_P(LayerNormOp, BackwardMatchesReference) {
  const Shape shape = GetParam();
  const int64_t C = shape.back(), rows = shape_numel(shape) / C;
  Tensor x = randn(shape, 4), w = randn({C}, 5), b = randn({C}, 6), dy = randn(shape, 7);
  ops::LayerNormOut out = ops::layer_norm(x, w, b, kEps);
  ops::LayerNormGrads g = ops::layer_norm_backward(dy, x, w, out.mean, out.rstd);
  const RefOut f = ref_forward(x, w, b);
  std::vector<double> dx(x.numel()), dw(C), db(C);
  const std::vector<double> dyd = to_double(dy), xd = to_double(x), wd = to_double(w);
  ref::layer_norm_backward(dx.data(), dw.data(), db.data(), dyd.data(), xd.data(), wd.data(),
                           f.mean.data(), f.rstd.data(), rows, C);
  EXPECT_TRUE(all_close(g.dx, dx, 2 * f32_tol(C), "dx"));
  EXPECT_TRUE(all_close(g.dw, dw, f32_tol(rows * C), "dw"));
  EXPECT_TRUE(all_close(g.db, db, f32_tol(rows), "db"));
}

// 1x1 (zero variance), small odd, 3-D odd, a 129-wide tail, and sizes that split across threads.
INSTANTIATE_TEST_SUITE_P(Shapes, LayerNormOp,
                         ::testing::Values(Shape{1, 1}, Shape{3, 7}, Shape{5, 17, 33},
                                           Shape{2, 3, 129}, Shape{300, 257}, Shape{1031, 64}));

TEST(LayerNormOp, NormalisesEachRow) {
  Tensor x = randn({4, 50}, 8, 5.0f);
  ops::LayerNormOut out = ops::layer_norm(x, Tensor::full({50}, 1.0f), Tensor::zeros({50}), kEps);
  const std::vector<float> y = out.y.to_vector();
  for (int r = 0; r < 4; ++r) {
    double s = 0, sq = 0;
    for (int i = 0; i < 50; ++i) {
      s += y[r * 50 + i];
      sq += y[r * 50 + i] * double(y[r * 50 + i]);
    }
    EXPECT_NEAR(s / 50, 0.0, 1e-5);
    EXPECT_NEAR(sq / 50, 1.0, 1e-3);
  }
}

TEST(LayerNormOp, RejectsBadInputs) {
  Tensor x = randn({3, 7}, 9), w = randn({7}, 10), b = randn({7}, 11);
  Tensor xi = Tensor::zeros({3, 7}, DType::kI32);
  EXPECT_TRUE(throws_op_error([&] { ops::layer_norm(xi, w, b, kEps); }, "layer_norm"));
  EXPECT_TRUE(throws_op_error([&] { ops::layer_norm(x, randn({6}, 1), b, kEps); }, "layer_norm"));
  EXPECT_TRUE(throws_op_error([&] { ops::layer_norm(x, w, randn({7, 1}, 1), kEps); }, "layer_norm"));
  EXPECT_TRUE(throws_op_error([&] { ops::layer_norm(Tensor::scalar(1.0f), w, b, kEps); }, "layer_norm"));
  EXPECT_TRUE(throws_op_error([&] { ops::layer_norm(x, Tensor(), b, kEps); }, "layer_norm"));
  EXPECT_TRUE(throws_op_error([&] { ops::layer_norm(x, w, b, -1.0f); }, "layer_norm"));
  ops::LayerNormOut out = ops::layer_norm(x, w, b, kEps);
  EXPECT_TRUE(throws_op_error([&] { ops::layer_norm_backward(randn({3, 8}, 1), x, w, out.mean, out.rstd); },
                              "layer_norm_backward"));
  EXPECT_TRUE(throws_op_error([&] { ops::layer_norm_backward(x, x, w, randn({4}, 1), out.rstd); },
                              "layer_norm_backward"));
  EXPECT_TRUE(throws_op_error([&] { ops::layer_norm_backward(x, x, w, out.mean, Tensor()); },
                              "layer_norm_backward"));
}

}  // namespace
}  // namespace perceiver
