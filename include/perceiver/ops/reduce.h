// Reductions.
#pragma once

#include <string>

#include "perceiver/core/tensor.h"

namespace perceiver::ops {

// Mean over one axis (negative counts from the end); the axis is removed.
Tensor mean(const Tensor& x, int axis);
// Broadcasts dy back over the reduced axis, divided by its length.
Tensor mean_backward(const Tensor& dy, const Shape& input_shape, int axis);

// x minus its mean over one axis (the shape is kept): per-example mean normalisation such as
// cepstral mean normalisation of (B, T, F) features over T. A symmetric projection, so its
// backward is center(dy, axis).
Tensor center(const Tensor& x, int axis);

// (x - mean) / sqrt(var + eps) over one axis (biased variance, shape kept): per-example mean and
// variance normalisation, e.g. of (B, T, F) features over T. Returns y and rstd = 1 / sqrt(var + eps)
// (the shape with the axis removed), which the backward needs.
struct Standardized {
  Tensor y, rstd;
};
Standardized standardize(const Tensor& x, int axis, float eps);
// dx = rstd * (dy - mean(dy) - y * mean(dy * y)), the means over the axis.
Tensor standardize_backward(const Tensor& dy, const Tensor& y, const Tensor& rstd, int axis);

Tensor sum_all(const Tensor& x);  // scalar (shape {})

// NaN and Inf values of a tensor: how many, and the first (flat index, value). Integer tensors
// are always finite; bf16 tensors are read as bf16.
struct NonFinite {
  int64_t count = 0;
  int64_t first = -1;
  float first_value = 0.0f;
  explicit operator bool() const { return count > 0; }
  // "3 non-finite values (first: nan at element 7)"
  std::string describe() const;
};
NonFinite count_nonfinite(const Tensor& x);

}  // namespace perceiver::ops
