// Backward rules of the elementwise ops checked against central finite differences of the
// double reference forward: add's broadcast (sum_to), expand_leading (sum_to), concat_last
// (split_last), mul and scale.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/reference/elementwise.h"
#include "ops/op_test_util.h"
#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/ops/elementwise.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::fd_grad;
using testing::randn;
using testing::to_double;
using Vec = std::vector<double>;

struct BroadcastCase {
  Shape a, b;
};

class ElementwiseGrad : public ::testing::TestWithParam<BroadcastCase> {};

TEST_P(ElementwiseGrad, AddBroadcastBackwardIsSumTo) {
  const auto [sa, sb] = GetParam();
  Tensor a = randn(sa, 61), b = randn(sb, 62), w = randn(sa, 63);
  const int64_t cols = shape_numel(sb), rows = shape_numel(sa) / cols;
  const Vec ad = to_double(a), bd = to_double(b);
  auto fwd = [&](const Vec& av, const Vec& bv) {
    Vec y(av.size());
    ref::add_forward(y.data(), av.data(), bv.data(), rows, cols);
    return y;
  };
  const Vec nda = fd_grad([&](const Vec& v) { return fwd(v, bd); }, ad, to_double(w));
  const Vec ndb = fd_grad([&](const Vec& v) { return fwd(ad, v); }, bd, to_double(w));
  // the real rule, through the tape: loss = mean(w * add(a, b)) * numel, so dloss/dy = w
  Tensor at = a.clone(), bt = b.clone();
  at.set_requires_grad(true);
  bt.set_requires_grad(true);
  const int64_t n = shape_numel(sa);
  Tensor loss = ag::reshape(ag::mean(ag::reshape(ag::mul(ag::add(at, bt), w), {1, n}), 1), {});
  autograd::backward(loss);
  EXPECT_TRUE(all_close(ops::scale(at.grad(), static_cast<float>(n)), nda, f32_tol(n), "da (tape)"));
  EXPECT_TRUE(all_close(ops::scale(bt.grad(), static_cast<float>(n)), ndb, 2 * f32_tol(n), "db = sum_to(dy) (tape)"));
}

TEST_P(ElementwiseGrad, ExpandLeadingBackwardIsSumTo) {
  const Shape sx = GetParam().b;
  const int64_t n = 4;
  Tensor x = randn(sx, 64);
  Shape sy{n};
  sy.insert(sy.end(), sx.begin(), sx.end());
  Tensor w = randn(sy, 65);
  const Vec ndx = fd_grad(
      [&](const Vec& v) {
        Vec y(n * v.size());
        ref::expand_leading_forward(y.data(), v.data(), n, static_cast<int64_t>(v.size()));
        return y;
      },
      to_double(x), to_double(w));
  EXPECT_TRUE(all_close(ops::sum_to(w, sx), ndx, 2 * f32_tol(n), "dx = sum_to(dy)"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, ElementwiseGrad,
                         ::testing::Values(BroadcastCase{{1, 1}, {1, 1}}, BroadcastCase{{3, 7}, {7}},
                                           BroadcastCase{{5, 17, 33}, {17, 33}},
                                           BroadcastCase{{5, 17, 33}, {33}},
                                           BroadcastCase{{2, 3, 129}, {129}}));

class ElementwiseGradSame : public ::testing::TestWithParam<Shape> {};

TEST_P(ElementwiseGradSame, ConcatBackwardIsSplit) {
  const Shape sa = GetParam();
  Shape sb = sa, sy = sa;
  sb.back() = 3;
  sy.back() += 3;
  const int64_t c1 = sa.back(), c2 = 3, rows = shape_numel(sa) / c1;
  Tensor a = randn(sa, 66), b = randn(sb, 67), w = randn(sy, 68);
  const Vec ad = to_double(a), bd = to_double(b), wd = to_double(w);
  auto fwd = [&](const Vec& av, const Vec& bv) {
    Vec y(av.size() + bv.size());
    ref::concat_last_forward(y.data(), av.data(), bv.data(), rows, c1, c2);
    return y;
  };
  const Vec nda = fd_grad([&](const Vec& v) { return fwd(v, bd); }, ad, wd);
  const Vec ndb = fd_grad([&](const Vec& v) { return fwd(ad, v); }, bd, wd);
  auto [da, db] = ops::split_last(w, c1);
  EXPECT_TRUE(all_close(da, nda, f32_tol(1), "da"));
  EXPECT_TRUE(all_close(db, ndb, f32_tol(1), "db"));
}

TEST_P(ElementwiseGradSame, MulScaleSub) {
  const Shape s = GetParam();
  const int64_t n = shape_numel(s);
  Tensor a = randn(s, 69), b = randn(s, 70), w = randn(s, 71);
  const Vec ad = to_double(a), bd = to_double(b), wd = to_double(w);
  auto mul = [&](const Vec& av, const Vec& bv) {
    Vec y(n);
    ref::mul_forward(y.data(), av.data(), bv.data(), n);
    return y;
  };
  auto sub = [&](const Vec& av, const Vec& bv) {
    Vec y(n);
    ref::sub_forward(y.data(), av.data(), bv.data(), n);
    return y;
  };
  EXPECT_TRUE(all_close(ops::mul(w, b), fd_grad([&](const Vec& v) { return mul(v, bd); }, ad, wd),
                        f32_tol(1), "mul da = dy * b"));
  EXPECT_TRUE(all_close(ops::mul(w, a), fd_grad([&](const Vec& v) { return mul(ad, v); }, bd, wd),
                        f32_tol(1), "mul db = dy * a"));
  EXPECT_TRUE(all_close(ops::scale(w, -1.0f), fd_grad([&](const Vec& v) { return sub(ad, v); }, bd, wd),
                        f32_tol(1), "sub db = -dy"));
  const Vec nscale = fd_grad(
      [&](const Vec& v) {
        Vec y(n);
        ref::scale_forward(y.data(), v.data(), 0.3, n);
        return y;
      },
      ad, wd);
  EXPECT_TRUE(all_close(ops::scale(w, 0.3f), nscale, f32_tol(1), "scale dx = s dy"));
}

// ag::log through the tape (the real backward) against central differences of the reference.
TEST_P(ElementwiseGradSame, LogThroughTheTape) {
  const Shape shape = GetParam();
  Tensor x = randn(shape, 43);
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = 0.2f + x.f32()[i] * x.f32()[i];
  const Tensor w = randn(shape, 44);
  const int64_t n = x.numel();
  const Vec xd = to_double(x), wd = to_double(w);
  x.set_requires_grad(true);
  autograd::backward(ag::log(x, 0.05f), w);  // cotangent w: d/dx sum(w * log(x + eps))
  const Vec num = fd_grad(
      [&](const Vec& v) {
        Vec y(static_cast<size_t>(n));
        ref::log_forward(y.data(), v.data(), 0.05, n);
        return y;
      },
      xd, wd);
  EXPECT_TRUE(all_close(x.grad(), num, f32_tol(8), "log dx = dy / (x + eps)"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, ElementwiseGradSame,
                         ::testing::Values(Shape{1, 1}, Shape{3, 7}, Shape{5, 17, 33}, Shape{2, 3, 129}));

}  // namespace
}  // namespace perceiver
