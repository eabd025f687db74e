// Test helpers: tolerance-aware comparison that reports the worst element, random tensors.
// Tolerances come from the data: allowed |got - ref| for element i is
//   tol * (|ref_i| + rms(ref))
// where tests pick tol as (small constant) * float epsilon * sqrt(reduction length).
#pragma once

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "perceiver/core/random.h"
#include "perceiver/core/tensor.h"

namespace perceiver::testing {

constexpr double kF32Eps = FLT_EPSILON;  // 1.19e-7

// Tolerance for a float32 result whose elements each sum `reduction_len` products.
inline double f32_tol(double reduction_len, double k = 8.0) {
  return k * kF32Eps * std::sqrt(std::max(1.0, reduction_len));
}

inline ::testing::AssertionResult all_close(const std::vector<float>& got,
                                            const std::vector<double>& ref, double tol,
                                            const std::string& what = "") {
  if (got.size() != ref.size())
    return ::testing::AssertionFailure()
           << what << ": size mismatch, got " << got.size() << " expected " << ref.size();
  double sq = 0;
  for (double r : ref) sq += r * r;
  const double rms = ref.empty() ? 0.0 : std::sqrt(sq / ref.size());
  double worst_ratio = 0;
  size_t worst = 0;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
    const double allowed = tol * (std::fabs(ref[i]) + rms) + 1e-30;
    const double ratio = std::isfinite(got[i]) ? err / allowed : INFINITY;
    if (ratio > 1.0) ++bad;
    if (ratio > worst_ratio || !std::isfinite(ratio)) {
      worst_ratio = ratio;
      worst = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  const double err = std::fabs(static_cast<double>(got[worst]) - ref[worst]);
  return ::testing::AssertionFailure()
         << what << ": " << bad << " of " << got.size() << " elements out of tolerance; worst at "
         << worst << ": got " << got[worst] << " expected " << ref[worst] << " |diff| " << err
         << " allowed " << tol * (std::fabs(ref[worst]) + rms) << " (tol " << tol << ", rms "
         << rms << ")";
}

inline ::testing::AssertionResult all_close(const Tensor& got, const std::vector<double>& ref,
                                            double tol, const std::string& what = "") {
  return all_close(got.to_vector(), ref, tol, what);
}

// |got_i - ref_i| <= allowed_i for every element, the bound computed by the caller per element
// (for results whose conditioning varies from element to element); prints the worst ratio.
inline ::testing::AssertionResult all_within(const Tensor& got_t, const std::vector<double>& ref,
                                             const std::vector<double>& allowed, const std::string& what = "") {
  const std::vector<float> got = got_t.to_vector();
  if (got.size() != ref.size() || allowed.size() != ref.size())
    return ::testing::AssertionFailure() << what << ": size mismatch, got " << got.size() << " expected "
                                         << ref.size() << " (bounds " << allowed.size() << ")";
  double worst_ratio = 0;
  size_t worst = 0, bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
    const double ratio = std::isfinite(got[i]) ? err / (allowed[i] + 1e-30) : INFINITY;
    if (ratio > 1.0) ++bad;
    if (ratio > worst_ratio || !std::isfinite(ratio)) {
      worst_ratio = ratio;
      worst = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": " << bad << " of " << got.size()
                                       << " elements out of tolerance; worst at " << worst << ": got " << got[worst]
                                       << " expected " << ref[worst] << " |diff| "
                                       << std::fabs(static_cast<double>(got[worst]) - ref[worst]) << " allowed "
                                       << allowed[worst];
}

inline std::vector<double> to_double(const Tensor& t) {
  std::vector<float> v = t.to_vector();
  return std::vector<double>(v.begin(), v.end());
}

// Tensor of standard-normal values times `scale`, deterministic from seed.
inline Tensor randn(const Shape& shape, uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  Tensor t = Tensor::empty(shape);
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = scale * rng.normal();
  return t;
}

}  // namespace perceiver::testing
