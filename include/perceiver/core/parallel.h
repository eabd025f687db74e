// One threading policy for the whole library: OpenMP (the same libgomp pool oneDNN uses), so
// our kernels and the GEMM never oversubscribe. Parallel regions are coarse (perf notes:
// fine-grained barriers lose whole host time slices when the two vCPUs share a core).
#pragma once

#include <cstdint>
#include <functional>

namespace perceiver {

// n <= 0: all hardware threads. Also makes the calling thread and the pool's threads flush
// denormal floats to zero (flush_denormals), unless PERCEIVER_KEEP_DENORMALS=1 is set.
void set_num_threads(int n);
// x86 flush-to-zero + denormals-are-zero on the calling thread and every thread of the pool
// (threads started later inherit it from the thread that starts them). Training drifts into
// denormals (|x| < 1.2e-38: softmax tails, vanishing gradients), which x86 computes ~100x
// slower: a masked-LM training step took 2.2x longer after 2,400 steps without this.
void flush_denormals(bool on);
int num_threads();  // 1 inside a parallel region (nested regions run on one thread)
bool in_parallel_region();

// Calls fn(begin, end) on disjoint sub-ranges of [0, n), in parallel when n >= 2*grain.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Runs fn(0) .. fn(n-1) on a team of `threads` (0: n), each task taken by the next free thread
// (one after another inside a parallel region). An exception thrown by a task is rethrown here
// after all tasks ended (the lowest task's first); ops called by a task run single-threaded.
void run_concurrently(int n, const std::function<void(int)>& fn, int threads = 0);

}  // namespace perceiver
