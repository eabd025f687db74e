// The processes of a data-parallel run (issue 14): MPI when the program was started by mpiexec
// or srun with more than one process, a world of one otherwise (no MPI call is made then, so the
// binary runs as ever without a launcher). Only the thread that called init() talks to MPI.
//
// Every wait is bounded: a peer that died or hangs makes the wait end after timeout_s with a
// message naming the ranks that did not answer, and the whole job is aborted (MPI_Abort), so
// no rank is left waiting forever. Results never depend on message arrival order: reductions
// sum the ranks' contributions in rank order (ordered_sum), so every rank gets the same bits.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace perceiver::dist {

// True when the environment says this process is one of several started by an MPI launcher
// (PMI_SIZE / OMPI_COMM_WORLD_SIZE / PMIX_SIZE... > 1, or SLURM_NTASKS > 1 under srun).
bool launched_with_several_processes();

// Starts MPI when launched_with_several_processes(); else the world is this process alone. A
// build without MPI refuses a multi-process launch with an error. Call once, early in main.
void init(int* argc, char*** argv);
// Ends MPI (after the last collective); a no-op for a world of one.
void finalize();

bool active();  // several processes
int rank();     // 0 for a world of one
int size();     // 1 for a world of one

// Seconds any wait may last before the job is declared stuck (default 300).
void set_timeout(double seconds);
double timeout();

// Prints "perceiver: error: rank R of N: why" and ends every process of the job (exit code 1).
[[noreturn]] void abort_job(const std::string& why);

// Blocking collectives with the bounded wait. `what` names the step in a timeout message.
void broadcast(void* data, int64_t bytes, int root, const char* what);
void allgather(const void* mine, int64_t bytes, void* all, const char* what);  // all: size() x bytes
// Every rank gets, for each element, the maximum over ranks.
void allreduce_max(std::vector<int64_t>& values, const char* what);
// Every rank gets sum over ranks in rank order ((v_0 + v_1) + v_2 ...), identical bits everywhere.
void allreduce_sum_ordered(std::vector<double>& values, const char* what);

// An in-place ordered sum of a float buffer across ranks that runs in the background of other
// work: each rank owns a contiguous chunk, receives that chunk from every rank, sums the
// contributions in rank order, and sends the sum back to all (reduce-scatter + all-gather by
// point-to-point messages, 2 (N-1)/N of the buffer sent per rank). progress() advances it
// without blocking; wait() finishes it. The buffer must stay alive and untouched until done.
class OrderedSum {
 public:
  OrderedSum();
  ~OrderedSum();
  OrderedSum(const OrderedSum&) = delete;
  OrderedSum& operator=(const OrderedSum&) = delete;

  // Starts summing data[0 .. count) across ranks; tag tells concurrent sums apart (the same on
  // every rank for the same buffer, 0 <= tag < 8192).
  void start(float* data, int64_t count, int tag);
  bool started() const;
  bool progress();  // true once the sum has landed in data (no wait)
  void wait(const char* what);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace perceiver::dist
