// Caching allocator: size classes with free lists, blocks never returned in steady state.
#include "perceiver/core/allocator.h"

#include <sys/mman.h>

#include <cstdio>
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
};

Pool& pool() {
  static Pool* p = new Pool();  // leaked on purpose: tensors may die during static destruction
  return *p;
}

}  // namespace

void* storage_alloc(size_t bytes) {
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
  p.free_lists[cls].push_back(ptr);
  p.stats.bytes_in_use -= cls;
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

}  // namespace perceiver
