// Whole-model gradient check in float32 that a 0.1% gradient error fails (issue 19).
//
// Per-entry finite differences of a float32 model need steps and tolerances so loose (h = 1e-2,
// 3%) that a uniformly scaled gradient passes. Here each parameter tensor T is checked along its
// own analytic gradient: with u = g_T / ||g_T||, the derivative of the loss along u must equal
// ||g_T||. The derivative is measured by central differences at steps h, h/2 and h/4 combined
// by Richardson extrapolation, which cancels the h^2 and h^4 error terms, so the steps can be
// large (the loss's float rounding, ~1e-7 relative, divided by a step of ~0.1) and the check
// still exact to ~1e-5. Per-entry checks stay beside it for errors in single elements.
// PERCEIVER_GRADCHECK_VERBOSE=1 prints every tensor's result.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "perceiver/core/tensor.h"

namespace perceiver::testing {

struct DirectionalResult {
  std::string name;
  double analytic = 0;  // ||g_T||
  double numeric = 0;   // the measured derivative along g_T / ||g_T||
  double allowed = 0;   // |numeric - analytic| bound
};

// params: the model's parameters with their gradients from one backward of `loss`; loss() gives
// the loss at the current parameter values without recording. rel_tol: the allowed relative
// error (5e-4 fails a 0.1% error); noise: the loss's absolute rounding noise, which bounds
// tensors whose gradient is too small for rel_tol to be measurable.
inline std::vector<DirectionalResult> directional_gradient_check(std::vector<std::pair<std::string, Tensor>> params,
                                                                 const std::function<double()>& loss, double h,
                                                                 double rel_tol, double noise) {
  std::vector<DirectionalResult> results;
  for (auto& [name, p] : params) {
    const std::vector<float> g = p.grad().to_vector();
    double norm = 0;
    for (float v : g) norm += static_cast<double>(v) * v;
    norm = std::sqrt(norm);
    if (norm == 0) continue;
    float* w = p.f32();
    const std::vector<float> orig(w, w + p.numel());
    auto derivative = [&](double s) {  // central difference along u at step s
      double l[2];
      for (int k = 0; k < 2; ++k) {
        const double sign = k == 0 ? 1.0 : -1.0;
        for (int64_t i = 0; i < p.numel(); ++i)
          w[i] = static_cast<float>(orig[i] + sign * s * g[i] / norm);
        l[k] = loss();
      }
      std::copy(orig.begin(), orig.end(), w);
      return (l[0] - l[1]) / (2 * s);
    };
    const double d1 = derivative(h), d2 = derivative(h / 2), d4 = derivative(h / 4);
    DirectionalResult r;
    r.name = name;
    r.analytic = norm;
    r.numeric = (64 * d4 - 20 * d2 + d1) / 45;  // Richardson: the h^2 and h^4 terms cancel
    // the rounding noise of each loss enters d(h/4) divided by h/2 and is amplified 64/45 times
    r.allowed = rel_tol * norm + 2.0 * (64.0 / 45.0) * noise / (h / 2);
    results.push_back(r);
  }
  return results;
}

// Every tensor within its bound; at least `min_tight` of them checked to rel_tol itself (their
// gradient large enough against the noise), so the check cannot pass by being all floor.
inline ::testing::AssertionResult directional_gradients_match(const std::vector<DirectionalResult>& results,
                                                             double rel_tol, size_t min_tight) {
  size_t tight = 0;
  std::string bad;
  for (const DirectionalResult& r : results) {
    if (r.allowed < 2 * rel_tol * r.analytic) ++tight;
    const double err = std::fabs(r.numeric - r.analytic);
    if (std::getenv("PERCEIVER_GRADCHECK_VERBOSE")) std::fprintf(stderr, "%-70s norm %.3e rel %.2e abs %.2e allowed %.2e\n", r.name.c_str(), r.analytic, err / r.analytic, err, r.allowed);
    if (!(err <= r.allowed))
      bad += "\n  " + r.name + ": analytic " + std::to_string(r.analytic) + ", measured " + std::to_string(r.numeric) +
             " (relative error " + std::to_string(err / r.analytic) + ", allowed " + std::to_string(r.allowed / r.analytic) + ")";
  }
  if (!bad.empty()) return ::testing::AssertionFailure() << "gradients off along their own direction:" << bad;
  if (tight < min_tight)
    return ::testing::AssertionFailure() << "only " << tight << " of " << results.size() << " tensors were checked to "
                                         << rel_tol << " (the others' gradients are within the loss noise)";
  return ::testing::AssertionSuccess();
}

}  // namespace perceiver::testing
