// cpu::gemm (every provider, every transpose, batched), ops::linear, linear_backward and matmul
// against the double-precision reference GEMM; shape and provider-name errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/reference/gemm.h"
#include "perceiver/core/gemm_provider.h"
#include "perceiver/core/parallel.h"
#include "perceiver/ops/linear.h"
#include "testing/compare.h"
#include "testing/errors.h"
#include "testing/provider_scope.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::expect_error;
using testing::f32_tol;
using testing::randn;
using testing::ProviderScope;
using testing::to_double;

const GemmProvider kProviders[] = {GemmProvider::kOneDNN, GemmProvider::kOpenBLAS,
                                   GemmProvider::kNaive};

std::vector<float> random_vec(int64_t n, uint64_t seed) { return randn({n}, seed).to_vector(); }
std::vector<double> widen(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// Reference y = x w^T + b over flattened rows, in double.
std::vector<double> linear_ref(const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t cout = w.dim(0), cin = w.dim(1), rows = x.numel() / cin;
  std::vector<double> xd = to_double(x), wd = to_double(w), y(rows * cout, 0.0);
  if (b.defined()) {
    std::vector<double> bd = to_double(b);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cout; ++j) y[r * cout + j] = bd[j];
  }
  reference::gemm<double>(false, true, rows, cout, cin, 1.0, xd.data(), cin, wd.data(), cin,
                          b.defined() ? 1.0 : 0.0, y.data(), cout);
  return y;
}

TEST(GemmProviderTest, NamesRoundTrip) {
  for (GemmProvider p : kProviders) EXPECT_EQ(parse_gemm_provider(gemm_provider_name(p)), p);
}

TEST(GemmProviderTest, UnknownNameThrows) {
  try {
    parse_gemm_provider("mkl");
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "[gemm] unknown provider 'mkl', expected one of: onednn, openblas, naive");
  }
}

// Odd sizes, padded leading dimensions, all transposes, overwrite and accumulate (beta).
TEST(GemmTest, AllProvidersAllTransposesMatchReference) {
  const int64_t m = 13, n = 11, k = 37, pad = 3;
  const float alpha = 0.75f;
  for (GemmProvider p : kProviders) {
    ProviderScope scope(p);
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (float beta : {0.0f, 1.0f, -0.5f}) {
          const int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
          std::vector<float> a = random_vec((ta ? k : m) * lda, 1);
          std::vector<float> b = random_vec((tb ? n : k) * ldb, 2);
          std::vector<float> c = random_vec(m * ldc, 3);
          std::vector<double> ad = widen(a), bd = widen(b), cd = widen(c);
          if (beta == 0.0f)  // beta = 0 must not read C
            std::fill(c.begin(), c.end(), std::numeric_limits<float>::quiet_NaN());
          for (int64_t i = 0; i < m; ++i)  // padding is never written: compare it too
            for (int64_t j = n; j < ldc; ++j) c[i * ldc + j] = static_cast<float>(cd[i * ldc + j]);
          cpu::gemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
          reference::gemm<double>(ta, tb, m, n, k, alpha, ad.data(), lda, bd.data(), ldb, beta,
                                  cd.data(), ldc);
          EXPECT_TRUE(all_close(c, cd, f32_tol(k)))
              << gemm_provider_name(p) << " ta=" << ta << " tb=" << tb << " beta=" << beta;
        }
  }
}

TEST(GemmTest, EmptyInnerDimensionScalesC) {
  std::vector<float> c = {1, 2, 3, 4};
  cpu::gemm(false, false, 2, 2, 0, 1.0f, nullptr, 0, nullptr, 2, 0.5f, c.data(), 2);
  EXPECT_EQ(c, (std::vector<float>{0.5f, 1.0f, 1.5f, 2.0f}));
}

// Small matrices (the batch-parallel path) and a shared A (stride 0).
TEST(GemmTest, BatchedMatchesReference) {
  const int64_t batch = 5, m = 7, n = 9, k = 6;
  for (GemmProvider p : kProviders) {
    ProviderScope scope(p);
    for (int64_t stride_a : {int64_t{0}, m * k}) {
      std::vector<float> a = random_vec(batch * m * k, 4), b = random_vec(batch * k * n, 5);
      std::vector<float> c(batch * m * n);
      std::vector<double> ad = widen(a), bd = widen(b), cd(c.size());
      cpu::gemm_batched(false, false, m, n, k, 1.0f, a.data(), k, stride_a, b.data(), n, k * n,
                        0.0f, c.data(), n, m * n, batch);
      for (int64_t i = 0; i < batch; ++i)
        reference::gemm<double>(false, false, m, n, k, 1.0, ad.data() + i * stride_a, k,
                                bd.data() + i * k * n, n, 0.0, cd.data() + i * m * n, n);
      EXPECT_TRUE(all_close(c, cd, f32_tol(k))) << gemm_provider_name(p) << " stride_a=" << stride_a;
    }
  }
}

TEST(LinearTest, ForwardMatchesReferenceEveryProvider) {
  const Tensor x = randn({2, 5, 37}, 10), w = randn({11, 37}, 11), b = randn({11}, 12);
  for (GemmProvider p : kProviders) {
    ProviderScope scope(p);
    const Tensor y = ops::linear(x, w, b);
    EXPECT_EQ(y.shape(), (Shape{2, 5, 11}));
    EXPECT_TRUE(all_close(y, linear_ref(x, w, b), f32_tol(37), "y with bias"))
        << gemm_provider_name(p);
    EXPECT_TRUE(all_close(ops::linear(x, w, Tensor()), linear_ref(x, w, Tensor()), f32_tol(37),
                          "y without bias"))
        << gemm_provider_name(p);
  }
}

TEST(LinearTest, RankOneInput) {
  const Tensor x = randn({7}, 13), w = randn({3, 7}, 14), b = randn({3}, 15);
  const Tensor y = ops::linear(x, w, b);
  EXPECT_EQ(y.shape(), (Shape{3}));
  EXPECT_TRUE(all_close(y, linear_ref(x, w, b), f32_tol(7)));
}

TEST(LinearTest, BackwardMatchesReference) {
  const int64_t rows = 2 * 5, cin = 37, cout = 11;
  const Tensor x = randn({2, 5, cin}, 16), w = randn({cout, cin}, 17), dy = randn({2, 5, cout}, 18);
  const std::vector<double> xd = to_double(x), wd = to_double(w), dyd = to_double(dy);
  std::vector<double> dx(rows * cin), dw(cout * cin), db(cout, 0.0);
  reference::gemm<double>(false, false, rows, cin, cout, 1.0, dyd.data(), cout, wd.data(), cin,
                          0.0, dx.data(), cin);
  reference::gemm<double>(true, false, cout, cin, rows, 1.0, dyd.data(), cout, xd.data(), cin, 0.0,
                          dw.data(), cin);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cout; ++j) db[j] += dyd[r * cout + j];
  for (GemmProvider p : kProviders) {
    ProviderScope scope(p);
    const ops::LinearGrads g = ops::linear_backward(dy, x, w, true, true, true);
    EXPECT_EQ(g.dx.shape(), x.shape());
    EXPECT_TRUE(all_close(g.dx, dx, f32_tol(cout), "dx")) << gemm_provider_name(p);
    EXPECT_TRUE(all_close(g.dw, dw, f32_tol(rows), "dw")) << gemm_provider_name(p);
    EXPECT_TRUE(all_close(g.db, db, f32_tol(rows), "db")) << gemm_provider_name(p);
  }
  const ops::LinearGrads only_dw = ops::linear_backward(dy, x, w, false, true, false);
  EXPECT_FALSE(only_dw.dx.defined());
  EXPECT_FALSE(only_dw.db.defined());
}

// Bias rows and the bias gradient on shapes that take every path of their kernels: rows narrower
// than a vector (added as a repeating pattern, with leftover rows), widths that are multiples of
// 16, over 64 columns (several column blocks), on 1 and 2 threads. db is a double sum of each
// column in row order, so it must not depend on the thread count at all.
TEST(LinearTest, BiasAndBiasGradientOnNarrowAndWideRows) {
  struct Case {
    int64_t rows, cin, cout;
  };
  // (the last three are big enough for two threads: 65,536 elements per thread)
  const Case cases[] = {{1000, 7, 35}, {97, 5, 3},     {41, 3, 1},      {64, 9, 200},
                        {33, 4, 130},  {300, 3, 16},   {50, 2, 24},     {5003, 3, 35},
                        {2001, 2, 130}, {4100, 2, 64}};
  const int threads_before = num_threads();
  for (const Case& c : cases) {
    const Tensor x = randn({c.rows, c.cin}, 30), w = randn({c.cout, c.cin}, 31), b = randn({c.cout}, 32);
    const Tensor dy = randn({c.rows, c.cout}, 33);
    std::vector<double> db(c.cout, 0.0);
    const std::vector<double> dyd = to_double(dy);
    for (int64_t r = 0; r < c.rows; ++r)
      for (int64_t j = 0; j < c.cout; ++j) db[j] += dyd[r * c.cout + j];
    std::vector<float> db_one_thread;
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      const std::string what = "rows " + std::to_string(c.rows) + " cout " + std::to_string(c.cout) + ", " +
                               std::to_string(threads) + " threads";
      EXPECT_TRUE(all_close(ops::linear(x, w, b), linear_ref(x, w, b), f32_tol(c.cin), "y")) << what;
      const ops::LinearGrads g = ops::linear_backward(dy, x, w, false, false, true);
      EXPECT_TRUE(all_close(g.db, db, f32_tol(1), "db")) << what;
      const std::vector<float> got(g.db.f32(), g.db.f32() + c.cout);
      if (threads == 1) db_one_thread = got;
      else EXPECT_EQ(got, db_one_thread) << what;
    }
  }
  set_num_threads(threads_before);
}

TEST(LinearTest, ShapeErrors) {
  const Tensor x = randn({4, 6}, 19), w = randn({3, 6}, 20);
  expect_error([&] { ops::linear(x, randn({3, 5}, 21), Tensor()); }, "[linear] x last dim");
  expect_error([&] { ops::linear(x, randn({18}, 21), Tensor()); }, "[linear] w must be");
  expect_error([&] { ops::linear(x, w, randn({4}, 22)); }, "[linear] b must be (Cout) = [3]");
  expect_error([&] { ops::linear_backward(randn({4, 4}, 23), x, w, true, true, true); },
               "[linear] dy must have shape [4, 3], got [4, 4]");
  expect_error([&] { ops::linear(Tensor::zeros({4, 6}, DType::kI32), w, Tensor()); },
               "[linear] x must be float32");
}

TEST(MatmulTest, BatchedAndSharedOperandsEveryTranspose) {
  const int64_t batch = 3, p = 5, q = 4, r = 6;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int shared : {0, 1, 2}) {  // 0: both batched, 1: a shared (rank 2), 2: b shared
        const Shape a_mat = ta ? Shape{q, p} : Shape{p, q};
        const Shape b_mat = tb ? Shape{r, q} : Shape{q, r};
        auto batched = [&](const Shape& s) { return Shape{batch, s[0], s[1]}; };
        const Tensor a = randn(shared == 1 ? a_mat : batched(a_mat), 30);
        const Tensor b = randn(shared == 2 ? b_mat : batched(b_mat), 31);
        const Tensor c = ops::matmul(a, b, ta, tb);
        ASSERT_EQ(c.shape(), (Shape{batch, p, r}));
        const std::vector<double> ad = to_double(a), bd = to_double(b);
        std::vector<double> cd(batch * p * r);
        for (int64_t i = 0; i < batch; ++i)
          reference::gemm<double>(ta, tb, p, r, q, 1.0, ad.data() + (shared == 1 ? 0 : i * p * q),
                                  a_mat[1], bd.data() + (shared == 2 ? 0 : i * q * r), b_mat[1],
                                  0.0, cd.data() + i * p * r, r);
        EXPECT_TRUE(all_close(c, cd, f32_tol(q))) << "ta=" << ta << " tb=" << tb << " shared=" << shared;
      }
  const Tensor c2 = ops::matmul(randn({p, q}, 32), randn({q, r}, 33));
  EXPECT_EQ(c2.shape(), (Shape{p, r}));
}

TEST(MatmulTest, ShapeErrors) {
  expect_error([] { ops::matmul(randn({2, 3, 4}, 1), randn({2, 5, 6}, 2)); },
               "[matmul] inner dims differ");
  expect_error([] { ops::matmul(randn({2, 3, 4}, 1), randn({3, 4, 6}, 2)); },
               "[matmul] batch dims differ");
  expect_error([] { ops::matmul(randn({4}, 1), randn({4, 6}, 2)); }, "[matmul] a must be");
}

}  // namespace
}  // namespace perceiver
