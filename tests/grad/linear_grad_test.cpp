// linear_backward gradients against central finite differences of the
// double-precision reference forward: f(x, w, b) = sum_i c_i * (x w^T + b)_i for a fixed random c.
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "kernels/reference/gemm.h"
#include "perceiver/ops/linear.h"
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

// sum_i c_i * y_i with y = x w^T + b over `rows` rows.
double linear_objective(const std::vector<double>& x, const std::vector<double>& w,
                        const std::vector<double>& b, const std::vector<double>& c, int64_t rows,
                        int64_t cin, int64_t cout) {
  std::vector<double> y(rows * cout);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cout; ++j) y[r * cout + j] = b[j];
  reference::gemm<double>(false, true, rows, cout, cin, 1.0, x.data(), cin, w.data(), cin, 1.0,
                          y.data(), cout);
  return dot(c, y);
}

TEST(LinearGradTest, BackwardMatchesFiniteDifferences) {
  const int64_t cin = 5, cout = 4, rows = 2 * 3;
  const Tensor x = randn({2, 3, cin}, 1), w = randn({cout, cin}, 2), b = randn({cout}, 3);
  const Tensor dy = randn({2, 3, cout}, 4);  // the fixed cotangent c
  const std::vector<double> xd = to_double(x), wd = to_double(w), bd = to_double(b),
                            cd = to_double(dy);

  const ops::LinearGrads g = ops::linear_backward(dy, x, w, true, true, true);
  const auto num_dx = numerical_grad(
      [&](const std::vector<double>& v) { return linear_objective(v, wd, bd, cd, rows, cin, cout); },
      xd);
  const auto num_dw = numerical_grad(
      [&](const std::vector<double>& v) { return linear_objective(xd, v, bd, cd, rows, cin, cout); },
      wd);
  const auto num_db = numerical_grad(
      [&](const std::vector<double>& v) { return linear_objective(xd, wd, v, cd, rows, cin, cout); },
      bd);
  EXPECT_TRUE(all_close(g.dx, num_dx, f32_tol(cout), "dx"));
  EXPECT_TRUE(all_close(g.dw, num_dw, f32_tol(rows), "dw"));
  EXPECT_TRUE(all_close(g.db, num_db, f32_tol(rows), "db"));
}

}  // namespace
}  // namespace perceiver
