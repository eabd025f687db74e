// bf16 kernels: cpu::f32_to_bf16 / bf16_to_f32 against the scalar reference (rounding ties,
// NaN, inf, denormals, odd lengths for the masked tail), and cpu::gemm_bf16 for every provider
// and transpose on odd shapes with strides, alpha and beta: the bf16 GEMM must equal, to fp32
// accumulation accuracy, the double-precision GEMM of the bf16-rounded inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/convert.h"
#include "kernels/cpu/gemm.h"
#include "kernels/reference/convert.h"
#include "kernels/reference/gemm.h"
#include "perceiver/core/gemm_provider.h"
#include "testing/compare.h"
#include "testing/provider_scope.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::randn;
using testing::ProviderScope;

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// bf16 rounding computed another way than the kernels (which round the float's bits): in double,
// keep 8 significant bits with std::nearbyint (ties to even in the default rounding mode). Float
// denormal inputs become a signed zero, as VCVTNEPS2BF16 does; overflow past bf16's largest
// finite value gives infinity.
uint16_t bf16_by_scaling(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  if (std::isinf(x) || x == 0.0f || std::fabs(x) < std::numeric_limits<float>::min())
    return static_cast<uint16_t>((bits >> 16) & (std::isinf(x) ? 0xffffu : 0x8000u));
  int e = 0;
  const double m = std::frexp(static_cast<double>(x), &e);  // x = m 2^e, 0.5 <= |m| < 1
  const double r = std::ldexp(std::nearbyint(std::ldexp(m, 8)), e - 8);
  if (std::fabs(r) >= std::ldexp(1.0, 128)) return x > 0 ? 0x7f80 : 0xff80;
  const float rf = static_cast<float>(r);  // exact: r has 8 significant bits
  uint32_t rb;
  std::memcpy(&rb, &rf, 4);
  EXPECT_EQ(rb & 0xffffu, 0u) << "not a bf16 value: " << r;
  return static_cast<uint16_t>(rb >> 16);
}

TEST(ConvertBf16, MatchesReferenceOnSpecialAndRandomValues) {
  std::vector<float> x = {0.0f, -0.0f, 1.0f, -2.5f, std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(),
                          from_bits(0x3f808000u),  // tie between 0x3f80 and 0x3f81 -> even 0x3f80
                          from_bits(0x3f818000u),  // tie between 0x3f81 and 0x3f82 -> even 0x3f82
                          from_bits(0x3f80c000u),  // above the tie -> 0x3f81
                          from_bits(0x00000001u),  // smallest denormal -> +0
                          from_bits(0x807fffffu),  // largest negative denormal -> -0
                          from_bits(0x00800000u),  // smallest normal stays normal
                          std::numeric_limits<float>::max()};  // rounds up to +inf
  const std::vector<float> r = randn({101}, 7, 3.0f).to_vector();
  x.insert(x.end(), r.begin(), r.end());
  for (int64_t n : {int64_t(1), int64_t(15), int64_t(16), int64_t(17), int64_t(x.size())}) {
    std::vector<uint16_t> got(n, 0xdead);
    cpu::f32_to_bf16(x.data(), got.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t want = bf16_by_scaling(x[i]);
      if (std::isnan(x[i])) {
        EXPECT_TRUE(std::isnan(reference::bf16_to_f32(got[i]))) << "element " << i;
      } else {
        EXPECT_EQ(got[i], want) << "n " << n << " element " << i << " value " << x[i];
      }
    }
  }
  // the same cases spelled out, for the kernel and for the scalar reference
  const std::pair<float, uint16_t> expected[] = {
      {from_bits(0x3f808000u), 0x3f80}, {from_bits(0x3f818000u), 0x3f82}, {from_bits(0x3f80c000u), 0x3f81},
      {from_bits(0xbf818000u), 0xbf82}, {from_bits(0x3f807fffu), 0x3f80}, {std::numeric_limits<float>::max(), 0x7f80},
      {from_bits(0x807fffffu), 0x8000}, {from_bits(0x00000001u), 0x0000}, {from_bits(0x00800000u), 0x0080},
      {-std::numeric_limits<float>::infinity(), 0xff80}, {-0.0f, 0x8000}, {1.0f, 0x3f80}};
  for (const auto& [value, bits] : expected) {
    uint16_t got = 0;
    cpu::f32_to_bf16(&value, &got, 1);
    EXPECT_EQ(got, bits) << "kernel, value " << value;
    EXPECT_EQ(reference::f32_to_bf16(value), bits) << "reference, value " << value;
    EXPECT_EQ(bf16_by_scaling(value), bits) << "test's own rounding, value " << value;
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  uint16_t nan_bits = 0;
  cpu::f32_to_bf16(&nan, &nan_bits, 1);
  EXPECT_EQ(nan_bits & 0x7f80, 0x7f80);
  EXPECT_NE(nan_bits & 0x007f, 0) << "NaN must stay NaN, not become infinity";
}

TEST(ConvertBf16, RoundTripIsExactForBf16Values) {
  std::vector<uint16_t> h(37);
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint16_t>(0x3c00 + 97 * i);
  std::vector<float> f(h.size());
  cpu::bf16_to_f32(h.data(), f.data(), static_cast<int64_t>(h.size()));
  std::vector<uint16_t> back(h.size());
  cpu::f32_to_bf16(f.data(), back.data(), static_cast<int64_t>(h.size()));
  EXPECT_EQ(back, h);
  for (size_t i = 0; i < h.size(); ++i) EXPECT_EQ(f[i], reference::bf16_to_f32(h[i]));
}

struct Case {
  bool ta, tb;
  int64_t m, n, k, pad;  // pad: extra leading-dimension elements per row
  float alpha, beta;
};

class GemmBf16 : public ::testing::TestWithParam<GemmProvider> {};

TEST_P(GemmBf16, MatchesDoubleGemmOfRoundedInputs) {
  ProviderScope scope(GetParam());
  const Case cases[] = {
      {false, false, 7, 13, 19, 0, 1.0f, 0.0f},  {false, true, 33, 17, 65, 3, 1.0f, 0.0f},
      {true, false, 9, 31, 11, 5, 0.5f, 1.0f},   {true, true, 16, 16, 32, 0, 2.0f, -0.5f},
      {false, true, 130, 70, 300, 1, 0.125f, 1.0f}, {false, false, 1, 1, 1, 0, 1.0f, 0.0f},
      {false, true, 64, 1100, 96, 2, 1.0f, 0.0f}};  // above the serial threshold
  uint64_t seed = 1;
  for (const Case& c : cases) {
    const int64_t a_rows = c.ta ? c.k : c.m, a_cols = c.ta ? c.m : c.k;
    const int64_t b_rows = c.tb ? c.n : c.k, b_cols = c.tb ? c.k : c.n;
    const int64_t lda = a_cols + c.pad, ldb = b_cols + c.pad, ldc = c.n + c.pad;
    const std::vector<float> af = randn({a_rows * lda}, seed++).to_vector();
    const std::vector<float> bf = randn({b_rows * ldb}, seed++).to_vector();
    const std::vector<float> c0 = randn({c.m * ldc}, seed++).to_vector();
    std::vector<uint16_t> a16(af.size()), b16(bf.size());
    cpu::f32_to_bf16(af.data(), a16.data(), static_cast<int64_t>(af.size()));
    cpu::f32_to_bf16(bf.data(), b16.data(), static_cast<int64_t>(bf.size()));
    std::vector<double> ad(af.size()), bd(bf.size()), ref(c0.begin(), c0.end());
    for (size_t i = 0; i < ad.size(); ++i) ad[i] = reference::bf16_to_f32(a16[i]);
    for (size_t i = 0; i < bd.size(); ++i) bd[i] = reference::bf16_to_f32(b16[i]);
    reference::gemm<double>(c.ta, c.tb, c.m, c.n, c.k, c.alpha, ad.data(), lda, bd.data(), ldb,
                            c.beta, ref.data(), ldc);
    std::vector<float> got = c0;
    cpu::gemm_bf16(c.ta, c.tb, c.m, c.n, c.k, c.alpha, a16.data(), lda, b16.data(), ldb, c.beta,
                   got.data(), ldc);
    // compare the m x n block only; the padding columns must be untouched
    std::vector<float> g;
    std::vector<double> r;
    for (int64_t i = 0; i < c.m; ++i)
      for (int64_t j = 0; j < ldc; ++j) {
        if (j < c.n) {
          g.push_back(got[i * ldc + j]);
          r.push_back(ref[i * ldc + j]);
        } else {
          EXPECT_EQ(got[i * ldc + j], c0[i * ldc + j]) << "padding overwritten at row " << i;
        }
      }
    const std::string what = std::string(gemm_provider_name(GetParam())) + " m" +
                             std::to_string(c.m) + " n" + std::to_string(c.n) + " k" +
                             std::to_string(c.k) + (c.ta ? " tA" : "") + (c.tb ? " tB" : "");
    EXPECT_TRUE(all_close(g, r, f32_tol(c.k), what));
  }
}

INSTANTIATE_TEST_SUITE_P(Providers, GemmBf16,
                         ::testing::Values(GemmProvider::kOneDNN, GemmProvider::kOpenBLAS,
                                           GemmProvider::kNaive),
                         [](const auto& info) { return std::string(gemm_provider_name(info.param)); });

#if defined(__AVX512BF16__)
// On a CPU with AVX512-BF16 the oneDNN path must run native bf16 code, not the fp32 fallback.
TEST(GemmBf16Impl, UsesNativeBf16OnThisCpu) {
  const std::string impl = cpu::gemm_bf16_impl(false, true, 64, 256, 128);
  EXPECT_NE(impl, "fp32 fallback");
  EXPECT_NE(impl.find("bf16"), std::string::npos) << impl;
}
#endif

}  // namespace
}  // namespace perceiver
