// Shared by the fp32 and bf16 GEMM entry points (kernels/cpu/gemm.cpp, gemm_bf16.cpp): the
// threading policy (size thresholds below which a GEMM stays on one thread, scoped thread-count
// controls for oneDNN's OpenMP team and OpenBLAS's pthread pool) and C = beta * C. Internal.
#pragma once

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "perceiver/core/parallel.h"

namespace perceiver::cpu::detail {

// Below this many multiply-adds per matrix a batched GEMM runs one matrix per thread (a GEMM
// this small threads poorly: ~8 MFLOP, ~40 us at the measured single-core rate).
constexpr double kSmallGemmWork = double(1 << 22);
// Below this many multiply-adds a single GEMM runs on one thread: it takes <= ~10 us, less than
// waking a passive OpenMP thread, and a fork/join loses whole host time slices when the two
// vCPUs are contended (docs/BENCHMARKS.md, perf_notes.md item 3).
constexpr double kSerialGemmWork = double(1 << 20);

// Runs oneDNN on one thread for a scope: dnnl sizes its team by omp_get_max_threads(), a
// per-thread setting, so this touches no other thread.
class OmpSingleThread {
 public:
  OmpSingleThread() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~OmpSingleThread() { omp_set_num_threads(saved_); }
  OmpSingleThread(const OmpSingleThread&) = delete;
  OmpSingleThread& operator=(const OmpSingleThread&) = delete;

 private:
  int saved_;
};

// Thread count last given to OpenBLAS (-1: never set).
inline std::atomic<int> g_openblas_threads{-1};

inline void set_openblas_threads(int n) {
  if (g_openblas_threads.load(std::memory_order_relaxed) != n) {
    openblas_set_num_threads(n);
    g_openblas_threads.store(n, std::memory_order_relaxed);
  }
}

// True when a GEMM of m x n x k multiply-adds should run on one thread although the caller has
// several (outside a parallel region, under kSerialGemmWork).
inline bool serial_gemm(int64_t m, int64_t n, int64_t k) {
  return double(m) * double(n) * double(k) < kSerialGemmWork && !in_parallel_region() &&
         num_threads() > 1;
}

// C = beta * C (beta == 0 writes zeros without reading C).
inline void scale_c(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    if (beta == 0.0f)
      std::fill(row, row + n, 0.0f);
    else if (beta != 1.0f)
      for (int64_t j = 0; j < n; ++j) row[j] *= beta;
  }
}

}  // namespace perceiver::cpu::detail
