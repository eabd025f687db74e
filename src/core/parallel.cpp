// OpenMP-backed threading policy.
#include "perceiver/core/parallel.h"

#include <omp.h>
#include <pmmintrin.h>
#include <xmmintrin.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

namespace perceiver {

namespace {

void flush_denormals_here(bool on) {
  _MM_SET_FLUSH_ZERO_MODE(on ? _MM_FLUSH_ZERO_ON : _MM_FLUSH_ZERO_OFF);
  _MM_SET_DENORMALS_ZERO_MODE(on ? _MM_DENORMALS_ZERO_ON : _MM_DENORMALS_ZERO_OFF);
}

}  // namespace

void flush_denormals(bool on) {
  flush_denormals_here(on);
  if (in_parallel_region()) return;
#pragma omp parallel num_threads(omp_get_max_threads())
  flush_denormals_here(on);
}

void set_num_threads(int n) {
  if (n <= 0) n = omp_get_num_procs();
  omp_set_num_threads(n);
  const char* keep = std::getenv("PERCEIVER_KEEP_DENORMALS");
  flush_denormals(!(keep != nullptr && std::string(keep) == "1"));
}

int num_threads() { return in_parallel_region() ? 1 : omp_get_max_threads(); }

bool in_parallel_region() { return omp_in_parallel() != 0; }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int threads = static_cast<int>(std::min<int64_t>(num_threads(), n / grain));
  if (threads <= 1 || in_parallel_region()) {
    fn(0, n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    const int64_t begin = n * t / nt;
    const int64_t end = n * (t + 1) / nt;
    if (begin < end) fn(begin, end);
  }
}

void run_concurrently(int n, const std::function<void(int)>& fn, int threads) {
  if (n <= 0) return;
  if (threads <= 0) threads = n;
  threads = std::min(threads, n);
  if (threads == 1 || in_parallel_region()) {
    for (int i = 0; i < n; ++i) fn(i);
    return;
  }
  std::vector<std::exception_ptr> errors(n);
#pragma omp parallel num_threads(threads)
  {
    // each task goes to the next thread that is free (a thread slowed by a busy core takes fewer)
#pragma omp for schedule(dynamic, 1)
    for (int i = 0; i < n; ++i) {
      try {
        fn(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace perceiver
