// Caching allocator: size classes with free lists, blocks never returned in steady state.
#include "perceiver/core/allocator.h"

#include <algorithm>
#include <atomic>
#include <cstdio>

#include <sys/mman.h>

#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "perceiver/core/error.h"

namespace perceiver {
namespace {

constexpr size_t kAlign = 64;
constexpr size_t kHugeThreshold = size_t(2) << 20;

// Round up to a size class: multiples of 64 B below 4 KiB, then 4 KiB pages with at most
// 1/8 waste (four mantissa bits per power of two).
size_t size_class(size_t bytes) {
  if (bytes == 0) bytes = kAlign;
  if (bytes <= 4096) return (bytes + kAlign - 1) / kAlign * kAlign;
  size_t pow2 = 4096;
  while (pow2 * 2 < bytes) pow2 *= 2;
  size_t step = pow2 / 8;
  return (bytes + step - 1) / step * step;
}

struct Pool {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> free_lists;
  MemoryStats stats;
  size_t cache_limit = SIZE_MAX;  // set_cached_memory_limit
};

Pool& pool() {
  static Pool* p = new Pool();  // leaked on purpose: tensors may die during static destruction
  return *p;
}

}  // namespace

namespace {
thread_local AllocationBudget* g_budget = nullptr;
std::atomic<bool> g_memory_checks{true};
}  // namespace

AllocationBudget::AllocationBudget(size_t limit_bytes, std::string what)
    : limit_(limit_bytes), what_(std::move(what)), outer_(g_budget) {
  g_budget = this;
}

AllocationBudget::~AllocationBudget() { g_budget = outer_; }

void set_memory_checks(bool enabled) { g_memory_checks.store(enabled); }
bool memory_checks_enabled() { return g_memory_checks.load(); }

std::string format_bytes(double bytes) {
  char buf[64];
  const char* unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 6) bytes /= 1024.0, ++u;
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", bytes, unit[u]);
  return buf;
}

void* storage_alloc(size_t bytes) {
  if (AllocationBudget* b = g_budget; b != nullptr && memory_checks_enabled()) {
    if (bytes > b->limit_ - std::min(b->used_, b->limit_))
      throw_error("[memory] ", b->what_, " needs more than ", format_bytes(static_cast<double>(b->limit_)),
                  " (this machine's memory): ", format_bytes(static_cast<double>(b->used_)),
                  " allocated so far and a further ", format_bytes(static_cast<double>(bytes)),
                  " requested; check the sizes in the config, or pass --skip-memory-check");
    b->used_ += bytes;
  }
  const size_t cls = size_class(bytes);
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mu);
    auto it = p.free_lists.find(cls);
    if (it != p.free_lists.end() && !it->second.empty()) {
      void* ptr = it->second.back();
      it->second.pop_back();
      p.stats.bytes_in_use += cls;
      if (p.stats.bytes_in_use > p.stats.peak_in_use) p.stats.peak_in_use = p.stats.bytes_in_use;
      return ptr;
    }
  }
  void* ptr = std::aligned_alloc(kAlign, cls);
  if (ptr == nullptr) throw_error("[allocator] out of memory allocating ", cls, " bytes");
  if (cls >= kHugeThreshold) madvise(ptr, cls, MADV_HUGEPAGE);
  std::lock_guard<std::mutex> lock(p.mu);
  p.stats.bytes_reserved += cls;
  p.stats.bytes_in_use += cls;
  p.stats.os_allocations += 1;
  if (p.stats.bytes_in_use > p.stats.peak_in_use) p.stats.peak_in_use = p.stats.bytes_in_use;
  return ptr;
}

void storage_free(void* ptr, size_t bytes) {
  if (ptr == nullptr) return;
  const size_t cls = size_class(bytes);
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  p.stats.bytes_in_use -= cls;
  if (p.stats.bytes_reserved - p.stats.bytes_in_use > p.cache_limit) {  // over the cache limit: return it
    std::free(ptr);
    p.stats.bytes_reserved -= cls;
    return;
  }
  p.free_lists[cls].push_back(ptr);
}

void set_cached_memory_limit(size_t bytes) {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  p.cache_limit = bytes;
}

MemoryStats memory_stats() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  return p.stats;
}

void reset_peak_memory() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  p.stats.peak_in_use = p.stats.bytes_in_use;
}

void release_cached_memory() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  for (auto& [cls, list] : p.free_lists) {
    for (void* ptr : list) {
      std::free(ptr);
      p.stats.bytes_reserved -= cls;
    }
    list.clear();
  }
}

namespace {

// A "Vm...:  N kB" field of /proc/self/status in bytes, 0 if unknown.
size_t proc_status_bytes(const char* field) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  const size_t len = std::strlen(field);
  char line[256];
  size_t kb = 0;
  while (std::fgets(line, sizeof(line), f)) {
    if (std::strncmp(line, field, len) == 0) {
      kb = std::strtoull(line + len, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return kb * 1024;
}

}  // namespace

size_t peak_rss_bytes() { return proc_status_bytes("VmHWM:"); }

size_t current_rss_bytes() { return proc_status_bytes("VmRSS:"); }

size_t machine_memory_bytes() {
  size_t total = 0;
  if (std::FILE* f = std::fopen("/proc/meminfo", "r")) {
    char line[256];
    unsigned long long kb = 0;
    while (std::fgets(line, sizeof(line), f))
      if (std::sscanf(line, "MemTotal: %llu kB", &kb) == 1) total = static_cast<size_t>(kb) * 1024;
    std::fclose(f);
  }
  // cgroup v2 (memory.max: a number or "max") and v1 limits, when smaller.
  for (const char* path : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"})
    if (std::FILE* f = std::fopen(path, "r")) {
      unsigned long long limit = 0;
      if (std::fscanf(f, "%llu", &limit) == 1 && limit > 0 && (total == 0 || limit < total))
        total = static_cast<size_t>(limit);
      std::fclose(f);
    }
  return total > 0 ? total : SIZE_MAX;
}

}  // namespace perceiver
