// cpu::small_gemm (the products inside attention with small heads) against the double-precision
// GEMM oracle: odd and panel-crossing sizes (a partial last vector, more than 64 columns, row
// counts beside every tile height), both layouts of A, padded leading dimensions, overwrite and
// accumulate; beta = 0 must not read C, padding is never written. ctest runs it on both ISAs.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/small_gemm.h"
#include "kernels/reference/gemm.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::randn;

std::vector<float> random_vec(int64_t n, uint64_t seed) { return randn({n}, seed).to_vector(); }
std::vector<double> widen(const std::vector<float>& v) { return {v.begin(), v.end()}; }

void check(bool ta, int64_t m, int64_t n, int64_t k, float beta, uint64_t seed) {
  const int64_t pad = 3, lda = (ta ? m : k) + pad, ldb = n + pad, ldc = n + pad;
  const float alpha = 0.75f;
  const std::vector<float> a = random_vec((ta ? k : m) * lda + 1, seed), b = random_vec(k * ldb + 1, seed + 1);
  std::vector<float> c = random_vec(m * ldc, seed + 2);
  std::vector<double> cd = widen(c);
  const std::vector<double> ad = widen(a), bd = widen(b);
  if (beta == 0.0f)  // C is not read: NaN there must not leak into the result
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = std::numeric_limits<float>::quiet_NaN();
  cpu::small_gemm(ta, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
  reference::gemm<double>(ta, false, m, n, k, alpha, ad.data(), lda, bd.data(), ldb, beta, cd.data(), ldc);
  EXPECT_TRUE(all_close(c, cd, f32_tol(k)))
      << "ta=" << ta << " m=" << m << " n=" << n << " k=" << k << " beta=" << beta;
}

TEST(SmallGemmTest, MatchesReference) {
  uint64_t seed = 10;
  for (bool ta : {false, true})
    for (int64_t m : {1, 5, 6, 7, 13, 50})
      for (int64_t n : {1, 15, 16, 17, 35, 50, 64, 65, 130})
        for (int64_t k : {1, 32, 37})
          for (float beta : {0.0f, 1.0f, -0.5f}) check(ta, m, n, k, beta, seed++);
}

TEST(SmallGemmTest, EmptyInnerDimensionScalesC) {
  std::vector<float> c = {1, 2, 3, 4};
  cpu::small_gemm(false, 2, 2, 0, 1.0f, nullptr, 0, nullptr, 2, 0.5f, c.data(), 2);
  EXPECT_EQ(c, (std::vector<float>{0.5f, 1.0f, 1.5f, 2.0f}));
  cpu::small_gemm(true, 2, 2, 0, 1.0f, nullptr, 0, nullptr, 2, 0.0f, c.data(), 2);
  EXPECT_EQ(c, (std::vector<float>{0.0f, 0.0f, 0.0f, 0.0f}));
}

// Each element sums its k products in order: splitting the rows (as attention does across
// threads) gives the same bits.
TEST(SmallGemmTest, RowSplitsGiveTheSameBits) {
  const int64_t m = 29, n = 50, k = 33;
  const std::vector<float> a = random_vec(m * k, 1), b = random_vec(k * n, 2);
  std::vector<float> whole(m * n), split(m * n);
  cpu::small_gemm(false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, whole.data(), n);
  for (int64_t r0 = 0; r0 < m; r0 += 4) {
    const int64_t rows = std::min<int64_t>(4, m - r0);
    cpu::small_gemm(false, rows, n, k, 1.0f, a.data() + r0 * k, k, b.data(), n, 0.0f, split.data() + r0 * n, n);
  }
  EXPECT_EQ(whole, split);
}

}  // namespace
}  // namespace perceiver
