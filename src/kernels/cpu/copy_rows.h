// Strided row copies (packing a head's slice into a dense block and back, GEMM operands). Rows of
// a few cache lines are copied by an inlined vector loop: a memmove call per
// row cost more than the copy itself (perf: 10% of a Fashion-MNIST bf16 training step went to
// per-row memmove in the attention kernels). Raw pointers, never throw.
#pragma once

#include <cstdint>
#include <cstring>

namespace perceiver::cpu {

// dst rows (stride ldd) = src rows (stride lds), rows x cols elements.
template <typename T>
inline void copy_rows(T* dst, int64_t ldd, const T* src, int64_t lds, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  if (ldd == cols && lds == cols) {
    std::memcpy(dst, src, static_cast<size_t>(rows * cols) * sizeof(T));
    return;
  }
  if (cols * static_cast<int64_t>(sizeof(T)) >= 4096) {  // long rows: the library copy is faster
    for (int64_t i = 0; i < rows; ++i) std::memcpy(dst + i * ldd, src + i * lds, static_cast<size_t>(cols) * sizeof(T));
    return;
  }
  for (int64_t i = 0; i < rows; ++i) {
    const T* __restrict s = src + i * lds;
    T* __restrict d = dst + i * ldd;
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) d[j] = s[j];
  }
}

}  // namespace perceiver::cpu
