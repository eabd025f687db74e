// Measured machine limits for "percent of peak" counters, taken by the same harness that runs
// the kernels: fp32 FMA peak (vfmadd231ps on 16 independent 512-bit accumulators), bf16 peak
// (vdpbf16ps, 2 multiply-adds per bf16 pair), and memory bandwidth (STREAM triad a = b + s c on
// 3 x 64 MiB, counted as 3 streams of bytes). Each is the best of several repeats on
// `threads` OpenMP threads. Needs AVX-512 (and AVX512-BF16 for the bf16 figure, else 0).
#pragma once

#include <omp.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>


namespace perceiver::bench {

struct MachinePeak {
  double f32_gflops = 0;   // fp32 multiply-add peak, GFLOP/s (2 FLOP per lane per FMA)
  double bf16_gflops = 0;  // bf16 dot-product peak, GFLOP/s (4 FLOP per fp32 lane per vdpbf16ps)
  double triad_gbs = 0;    // memory bandwidth, GB/s
};

namespace detail {

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// FLOP/s of body() run once on each of `threads` threads, flop_per_thread each (best of 5).
template <typename Body>
double best_rate(int threads, double flop_per_thread, Body body) {
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += body();
    const double s = seconds_since(t0);
    if (sink == 12345.678f) best += 0;  // keep the result alive
    best = std::max(best, flop_per_thread * threads / s);
  }
  return best;
}

}  // namespace detail

// 16 independent multiply-add chains in zmm16..zmm31 per loop trip, written in assembly so the
// compiler can neither spill the accumulators nor drop the loop. `op` is vfmadd231ps or vdpbf16ps.
#define PERCEIVER_PEAK_ONE(op, r) op " %%zmm1, %%zmm0, %%zmm" #r "\n\t"
#define PERCEIVER_PEAK_16(op)                                                                  \
  PERCEIVER_PEAK_ONE(op, 16) PERCEIVER_PEAK_ONE(op, 17) PERCEIVER_PEAK_ONE(op, 18)            \
  PERCEIVER_PEAK_ONE(op, 19) PERCEIVER_PEAK_ONE(op, 20) PERCEIVER_PEAK_ONE(op, 21)            \
  PERCEIVER_PEAK_ONE(op, 22) PERCEIVER_PEAK_ONE(op, 23) PERCEIVER_PEAK_ONE(op, 24)            \
  PERCEIVER_PEAK_ONE(op, 25) PERCEIVER_PEAK_ONE(op, 26) PERCEIVER_PEAK_ONE(op, 27)            \
  PERCEIVER_PEAK_ONE(op, 28) PERCEIVER_PEAK_ONE(op, 29) PERCEIVER_PEAK_ONE(op, 30)            \
  PERCEIVER_PEAK_ONE(op, 31)
#define PERCEIVER_PEAK_Z(r) "vpxord %%zmm" #r ", %%zmm" #r ", %%zmm" #r "\n\t"
// zero the operands and all accumulators first (no denormals left over from other code)
#define PERCEIVER_PEAK_ZERO                                                                    \
  "vxorps %%xmm0, %%xmm0, %%xmm0\n\tvxorps %%xmm1, %%xmm1, %%xmm1\n\t" PERCEIVER_PEAK_Z(16)    \
  PERCEIVER_PEAK_Z(17) PERCEIVER_PEAK_Z(18) PERCEIVER_PEAK_Z(19) PERCEIVER_PEAK_Z(20)            \
  PERCEIVER_PEAK_Z(21) PERCEIVER_PEAK_Z(22) PERCEIVER_PEAK_Z(23) PERCEIVER_PEAK_Z(24)            \
  PERCEIVER_PEAK_Z(25) PERCEIVER_PEAK_Z(26) PERCEIVER_PEAK_Z(27) PERCEIVER_PEAK_Z(28)            \
  PERCEIVER_PEAK_Z(29) PERCEIVER_PEAK_Z(30) PERCEIVER_PEAK_Z(31)
#define PERCEIVER_PEAK_LOOP(op)                                                                \
  __asm__ volatile(PERCEIVER_PEAK_ZERO                                                        \
                   "1:\n\t" PERCEIVER_PEAK_16(op) "dec %0\n\tjnz 1b\n\t"                     \
                   : "+r"(trips)                                                              \
                   :                                                                          \
                   : "xmm0", "xmm1", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21",    \
                     "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29",  \
                     "xmm30", "xmm31", "cc")

inline MachinePeak measure_machine_peak(int threads) {
  MachinePeak p;
  constexpr int64_t kTrips = 20'000'000;
#if defined(__AVX512F__)
  // 16 FMAs x 16 lanes x 2 FLOP per trip
  p.f32_gflops = 1e-9 * detail::best_rate(threads, 16.0 * 16 * 2 * kTrips, [] {
    int64_t trips = kTrips;
    PERCEIVER_PEAK_LOOP("vfmadd231ps");
    return float(trips);
  });
#endif
#if defined(__AVX512BF16__)
  // 16 vdpbf16ps x 16 fp32 lanes x 2 bf16 pairs x 2 FLOP per trip
  p.bf16_gflops = 1e-9 * detail::best_rate(threads, 16.0 * 16 * 4 * kTrips, [] {
    int64_t trips = kTrips;
    PERCEIVER_PEAK_LOOP("vdpbf16ps");
    return float(trips);
  });
#endif
  const int64_t n = int64_t(16) << 20;  // 16 Mi floats = 64 MiB per array
  std::vector<float> a(n), b(n, 1.0f), c(n, 2.0f);
  double best = 0;
  for (int rep = 0; rep < 6; ++rep) {  // the first pass also faults the pages in
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < n; ++i) a[i] = b[i] + 0.5f * c[i];
    if (rep > 0) best = std::max(best, 3.0 * 4.0 * double(n) / detail::seconds_since(t0));
  }
  p.triad_gbs = best * 1e-9 + (a[n / 2] == -1.0f ? 1 : 0);
  return p;
}

// Adds the measured limits to Google Benchmark's context block (call before Initialize).
inline void add_peak_context(const MachinePeak& p) {
  benchmark::AddCustomContext("peak_f32_gflops", std::to_string(p.f32_gflops));
  benchmark::AddCustomContext("peak_bf16_gflops", std::to_string(p.bf16_gflops));
  benchmark::AddCustomContext("triad_gbs", std::to_string(p.triad_gbs));
}

}  // namespace perceiver::bench

#undef PERCEIVER_PEAK_LOOP
#undef PERCEIVER_PEAK_16
#undef PERCEIVER_PEAK_ONE
#undef PERCEIVER_PEAK_ZERO
#undef PERCEIVER_PEAK_Z
