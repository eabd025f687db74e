// Per-op profile (see profiler.h): self times summed per name under a mutex, only while enabled.
#include "perceiver/core/profiler.h"

#include <atomic>
#include <mutex>

namespace perceiver::profiler {
namespace {

std::atomic<bool> g_enabled{false};
std::mutex g_mutex;
std::map<std::string, Entry>& table() {
  static std::map<std::string, Entry> t;
  return t;
}
thread_local Scope* t_current = nullptr;

}  // namespace

void set_enabled(bool on) { g_enabled.store(on, std::memory_order_relaxed); }
bool enabled() { return g_enabled.load(std::memory_order_relaxed); }

void reset() {
  std::lock_guard<std::mutex> lock(g_mutex);
  table().clear();
}

std::map<std::string, Entry> snapshot() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return table();
}

Scope::Scope(const char* name, double flops) : name_(name), flops_(flops), on_(enabled()) {
  if (!on_) return;
  parent_ = t_current;
  t_current = this;
  start_ = std::chrono::steady_clock::now();
}

Scope::~Scope() {
  if (!on_) return;
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  t_current = parent_;
  if (parent_) parent_->child_seconds_ += total;
  std::lock_guard<std::mutex> lock(g_mutex);
  Entry& e = table()[name_];
  e.seconds += total - child_seconds_;
  e.calls += 1;
  e.flops += flops_;
}

}  // namespace perceiver::profiler
