// libFuzzer entry point: one executable per target, chosen at build time (PERCEIVER_FUZZ_TARGET).
#include <cstdio>
#include <cstdlib>

#include "targets.h"

#define PERCEIVER_STR2(x) #x
#define PERCEIVER_STR(x) PERCEIVER_STR2(x)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const perceiver::fuzz::Target* target = [] {
    const perceiver::fuzz::Target* t = perceiver::fuzz::find_target(PERCEIVER_STR(PERCEIVER_FUZZ_TARGET));
    if (!t) {
      std::fprintf(stderr, "unknown fuzz target %s\n", PERCEIVER_STR(PERCEIVER_FUZZ_TARGET));
      std::abort();
    }
    return t;
  }();
  target->run(data, size);  // an escaping exception terminates: libFuzzer records the input
  return 0;
}
