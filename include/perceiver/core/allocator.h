// Caching allocator for tensor storage: 64-byte aligned blocks kept in size-class free lists
// and reused, never returned to the OS in steady state (fresh pages cost ~17 us each here,
// see shared perf notes). Large blocks are advised for transparent huge pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace perceiver {

struct MemoryStats {
  size_t bytes_in_use = 0;    // handed out to live tensors
  size_t bytes_reserved = 0;  // obtained from the OS (in use + cached)
  size_t peak_in_use = 0;
  uint64_t os_allocations = 0;  // number of blocks obtained from the OS
};

void* storage_alloc(size_t bytes);  // never returns null (throws Error on OOM)
void storage_free(void* ptr, size_t bytes);
MemoryStats memory_stats();
void reset_peak_memory();      // peak_in_use = bytes_in_use (measure the peak of one phase)
void release_cached_memory();  // give cached blocks back (tests, end of program)
// At most this many bytes of freed blocks stay cached (default: no limit, the steady state of
// training); a block freed beyond it goes back to the system. A server sets it: requests of
// ever new shapes would otherwise keep blocks of ever new size classes.
void set_cached_memory_limit(size_t bytes);

// Peak resident set size of this process in bytes (VmHWM), 0 if unknown.
size_t peak_rss_bytes();
// Current resident set size (VmRSS), 0 if unknown.
size_t current_rss_bytes();

// The memory this process may use: physical memory (MemTotal), or a smaller cgroup limit.
size_t machine_memory_bytes();

// Size before allocation: while a budget is active on this thread, tensor storage requested in
// total beyond `limit` bytes throws "[memory] <what> needs more than <limit> ..." before the
// allocation is attempted (e.g. a config.json asking for terabytes of parameters). Nested
// budgets: the innermost applies. Disabled by set_memory_checks(false) (--skip-memory-check).
class AllocationBudget {
 public:
  AllocationBudget(size_t limit_bytes, std::string what);
  ~AllocationBudget();
  AllocationBudget(const AllocationBudget&) = delete;
  AllocationBudget& operator=(const AllocationBudget&) = delete;
  size_t used() const { return used_; }

 private:
  friend void* storage_alloc(size_t bytes);
  size_t limit_, used_ = 0;
  std::string what_;
  AllocationBudget* outer_;
};

// Process-wide switch for the memory checks (budgets and the trainer's estimate); on by default.
void set_memory_checks(bool enabled);
bool memory_checks_enabled();

// "23.5 GiB"
std::string format_bytes(double bytes);

}  // namespace perceiver
