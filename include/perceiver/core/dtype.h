// Element types. Compute is float32; i32 holds labels and indices; bf16/f16 storage is
// reserved for loading and later bf16 inference (converted on load).
#pragma once

#include <cstddef>
#include <cstdint>

namespace perceiver {

enum class DType : uint8_t { kF32, kI32, kBF16, kF16 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kI32: return 4;
    case DType::kBF16: return 2;
    case DType::kF16: return 2;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "float32";
    case DType::kI32: return "int32";
    case DType::kBF16: return "bfloat16";
    case DType::kF16: return "float16";
  }
  return "?";
}

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::kF32; }
template <> constexpr DType dtype_of<int32_t>() { return DType::kI32; }

}  // namespace perceiver
