// Reductions.
#pragma once

#include "perceiver/core/tensor.h"

namespace perceiver::ops {

// Mean over one axis (negative counts from the end); the axis is removed.
Tensor mean(const Tensor& x, int axis);
// Broadcasts dy back over the reduced axis, divided by its length.
Tensor mean_backward(const Tensor& dy, const Shape& input_shape, int axis);

Tensor sum_all(const Tensor& x);  // scalar (shape {})

}  // namespace perceiver::ops
