// One threading policy for the whole library: OpenMP (the same libgomp pool oneDNN uses), so
// our kernels and the GEMM never oversubscribe. Parallel regions are coarse (perf notes:
// fine-grained barriers lose whole host time slices when the two vCPUs share a core).
#pragma once

#include <cstdint>
#include <functional>

namespace perceiver {

void set_num_threads(int n);  // n <= 0: all hardware threads
int num_threads();  // 1 inside a parallel region (nested regions run on one thread)
bool in_parallel_region();

// Calls fn(begin, end) on disjoint sub-ranges of [0, n), in parallel when n >= 2*grain.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Runs fn(0) .. fn(n-1) on a team of `threads` (0: n), each task taken by the next free thread
// (one after another inside a parallel region). An exception thrown by a task is rethrown here
// after all tasks ended (the lowest task's first); ops called by a task run single-threaded.
void run_concurrently(int n, const std::function<void(int)>& fn, int threads = 0);

}  // namespace perceiver
