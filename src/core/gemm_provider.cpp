// GEMM provider selection: a process-wide setting, initialised from PERCEIVER_GEMM on first use.
#include "perceiver/core/gemm_provider.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "perceiver/core/error.h"

namespace perceiver {
namespace {

GemmProvider initial_provider() {
  const char* env = std::getenv("PERCEIVER_GEMM");
  if (env == nullptr || *env == '\0') return GemmProvider::kOneDNN;
  try {
    return parse_gemm_provider(env);
  } catch (const Error& e) {
    // Read lazily from inside kernels, which must not throw: report and keep the default.
    std::fprintf(stderr, "%s (from PERCEIVER_GEMM); using onednn\n", e.what());
    return GemmProvider::kOneDNN;
  }
}

std::atomic<GemmProvider>& provider_slot() {
  static std::atomic<GemmProvider> slot{initial_provider()};
  return slot;
}

}  // namespace

void set_gemm_provider(GemmProvider p) { provider_slot().store(p, std::memory_order_relaxed); }

GemmProvider gemm_provider() { return provider_slot().load(std::memory_order_relaxed); }

GemmProvider parse_gemm_provider(const std::string& name) {
  if (name == "onednn") return GemmProvider::kOneDNN;
  if (name == "openblas") return GemmProvider::kOpenBLAS;
  if (name == "naive") return GemmProvider::kNaive;
  throw_error("[gemm] unknown provider '", name, "', expected one of: onednn, openblas, naive");
}

const char* gemm_provider_name(GemmProvider p) {
  switch (p) {
    case GemmProvider::kOneDNN: return "onednn";
    case GemmProvider::kOpenBLAS: return "openblas";
    case GemmProvider::kNaive: return "naive";
  }
  return "unknown";
}

}  // namespace perceiver
