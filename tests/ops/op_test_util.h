// Shared helpers for tests/ops and tests/grad: op error-message checks, random labels and the
// finite-difference gradient of f(x) = sum_i w_i forward(x)_i.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "perceiver/core/error.h"
#include "perceiver/core/random.h"
#include "perceiver/core/tensor.h"
#include "testing/gradcheck.h"

namespace perceiver::testing {

// Passes when fn throws perceiver::Error whose message starts with "[op] ".
inline ::testing::AssertionResult throws_op_error(const std::function<void()>& fn,
                                                  const std::string& op) {
  try {
    fn();
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (msg.rfind("[" + op + "] ", 0) == 0) return ::testing::AssertionSuccess() << msg;
    return ::testing::AssertionFailure() << "message does not start with \"[" << op << "] \": " << msg;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-perceiver exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

// n integers uniform in [lo, hi), deterministic from seed.
inline std::vector<int32_t> random_ints(int64_t n, int32_t lo, int32_t hi, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = lo + static_cast<int32_t>(rng.below(static_cast<uint32_t>(hi - lo)));
  return v;
}

using VecFn = std::function<std::vector<double>(const std::vector<double>&)>;

// d/dx of sum_i w_i forward(x)_i by central differences (double precision).
inline std::vector<double> fd_grad(const VecFn& forward, const std::vector<double>& x,
                                   const std::vector<double>& w) {
  return numerical_grad([&](const std::vector<double>& xv) { return dot(w, forward(xv)); }, x);
}

// Number of rows and the last dimension of a shape (rows = product of the leading dims).
inline int64_t rows_of(const Shape& s) { return s.empty() ? 1 : shape_numel(s) / s.back(); }

}  // namespace perceiver::testing
