// The caching allocator's limit on cached memory (core/allocator.h).
#include <gtest/gtest.h>

#include <cstdint>

#include "perceiver/core/allocator.h"

namespace perceiver {
namespace {

TEST(Allocator, CachedMemoryStaysUnderItsLimit) {
  release_cached_memory();
  const size_t mib = size_t(1) << 20;
  set_cached_memory_limit(3 * mib);
  const MemoryStats start = memory_stats();
  // blocks of eight different sizes (a server's requests of ever new shapes), each freed
  std::vector<std::pair<void*, size_t>> blocks;
  for (size_t k = 1; k <= 8; ++k) blocks.emplace_back(storage_alloc(k * mib / 2 + 4096 * k), k * mib / 2 + 4096 * k);
  for (auto [p, n] : blocks) storage_free(p, n);
  const MemoryStats after = memory_stats();
  EXPECT_EQ(after.bytes_in_use, start.bytes_in_use);
  EXPECT_LE(after.bytes_reserved - after.bytes_in_use, 3 * mib) << "cached beyond the limit";
  EXPECT_GT(after.bytes_reserved - after.bytes_in_use, 0u) << "blocks under the limit stay cached";
  // a freed block of a cached class is reused, not taken from the system again
  void* again = storage_alloc(blocks[0].second);
  EXPECT_EQ(memory_stats().os_allocations, after.os_allocations);
  storage_free(again, blocks[0].second);
  set_cached_memory_limit(SIZE_MAX);
  release_cached_memory();
}

}  // namespace
}  // namespace perceiver
