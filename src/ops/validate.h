// Input checks shared by the ops: each throws perceiver::Error with a message that starts with
// "[op] " and states what was expected and what arrived.
#pragma once

#include <algorithm>

#include "perceiver/core/tensor.h"

namespace perceiver::ops::detail {

inline void expect_dtype(const char* op, const char* name, const Tensor& t, DType dtype) {
  check(t.defined(), "[", op, "] ", name, ": expected a defined ", dtype_name(dtype),
        " tensor, got an undefined tensor");
  check(t.dtype() == dtype, "[", op, "] ", name, ": expected dtype ", dtype_name(dtype), ", got ",
        dtype_name(t.dtype()));
}

inline void expect_f32(const char* op, const char* name, const Tensor& t) {
  expect_dtype(op, name, t, DType::kF32);
}

inline void expect_min_rank(const char* op, const char* name, const Tensor& t, int rank) {
  check(t.rank() >= rank, "[", op, "] ", name, ": expected rank >= ", rank, ", got shape ",
        shape_str(t.shape()));
}

inline void expect_shape(const char* op, const char* name, const Tensor& t, const Shape& shape) {
  check(t.shape() == shape, "[", op, "] ", name, ": expected shape ", shape_str(shape), ", got ",
        shape_str(t.shape()));
}

// True when `suffix` equals the trailing dims of `shape`.
inline bool is_suffix(const Shape& suffix, const Shape& shape) {
  if (suffix.size() > shape.size()) return false;
  return std::equal(suffix.begin(), suffix.end(), shape.end() - static_cast<std::ptrdiff_t>(suffix.size()));
}

}  // namespace perceiver::ops::detail
