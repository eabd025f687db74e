// Central finite differences in double precision, for checking *_backward ops.
// f maps the flattened input to a scalar; typically f(x) = sum_i w_i * ref_forward(x)_i with a
// fixed random cotangent w, so d f / d x equals the backward op applied to dy = w.
#pragma once

#include <functional>
#include <vector>

namespace perceiver::testing {

inline std::vector<double> numerical_grad(const std::function<double(const std::vector<double>&)>& f,
                                          std::vector<double> x, double h = 1e-6) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double orig = x[i];
    x[i] = orig + h;
    const double fp = f(x);
    x[i] = orig - h;
    const double fm = f(x);
    x[i] = orig;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace perceiver::testing
