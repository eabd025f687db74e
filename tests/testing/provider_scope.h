// Sets the GEMM provider for one scope and restores the previous one, also when an ASSERT_*
// returns from the test early.
#pragma once

#include "perceiver/core/gemm_provider.h"

namespace perceiver::testing {

class ProviderScope {
 public:
  explicit ProviderScope(GemmProvider p) : saved_(gemm_provider()) { set_gemm_provider(p); }
  ~ProviderScope() { set_gemm_provider(saved_); }
  ProviderScope(const ProviderScope&) = delete;
  ProviderScope& operator=(const ProviderScope&) = delete;

 private:
  GemmProvider saved_;
};

}  // namespace perceiver::testing
