// A per-op time profile: ops open a Scope named for their family ("linear", "linear_backward",
// "attention", "layer_norm", ...) with the multiply-adds they do; when profiling is on, each
// scope's self time (its time minus that of scopes opened inside it) and FLOPs are summed per
// name. Off by default: a Scope then costs one relaxed atomic load. Scopes may open on any
// thread; a nested scope's time counts once, for the innermost name.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace perceiver::profiler {

struct Entry {
  double seconds = 0.0;  // self time
  int64_t calls = 0;
  double flops = 0.0;    // floating-point operations (2 per multiply-add) the scopes declared
};

void set_enabled(bool on);
bool enabled();
void reset();
std::map<std::string, Entry> snapshot();

class Scope {
 public:
  explicit Scope(const char* name, double flops = 0.0);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  const char* name_;
  double flops_;
  bool on_;
  std::chrono::steady_clock::time_point start_;
  double child_seconds_ = 0.0;
  Scope* parent_ = nullptr;
};

}  // namespace perceiver::profiler
