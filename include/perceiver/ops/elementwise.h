// Elementwise arithmetic, broadcasting over leading dimensions, concatenation and expansion.
#pragma once

#include "perceiver/core/tensor.h"

namespace perceiver::ops {

// out = a + b where b's shape equals a trailing suffix of a's shape (same shape included);
// b is repeated over a's leading dimensions (residuals, biases, position embeddings).
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);        // same shapes
Tensor mul(const Tensor& a, const Tensor& b);        // same shapes
Tensor scale(const Tensor& x, float s);              // s * x
// log(x + eps) elementwise (log power features); x + eps <= 0 is an Error naming the first such
// element (NaN propagates). log_backward: dy / (x + eps).
Tensor log(const Tensor& x, float eps);
Tensor log_backward(const Tensor& dy, const Tensor& x, float eps);
void add_inplace(Tensor& dst, const Tensor& src);    // dst += src, same shapes
void axpy_inplace(Tensor& dst, float alpha, const Tensor& src);  // dst += alpha * src

// Sums x over its leading dimensions so the result has shape `target` (a suffix of x's shape):
// the backward of add's broadcast.
Tensor sum_to(const Tensor& x, const Shape& target);

// Repeats x along a new leading dimension: (...) -> (n, ...) (learned latents -> batch).
Tensor expand_leading(const Tensor& x, int64_t n);

// Concatenates along the last dimension: a (..., C1), b (..., C2) -> (..., C1 + C2).
// Leading dims must match exactly.
Tensor concat_last(const Tensor& a, const Tensor& b);
// Splits the last dimension at c1: (..., C1 + C2) -> {(..., C1), (..., C2)} (concat backward).
std::pair<Tensor, Tensor> split_last(const Tensor& x, int64_t c1);

}  // namespace perceiver::ops
