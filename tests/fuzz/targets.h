// The loaders that read untrusted bytes, one fuzz target each, shared by the libFuzzer harnesses
// (fuzz_main.cpp, built with -DPERCEIVER_FUZZ=ON: clang, ASan, UBSan) and by the ctest suite, which
// runs every committed seed and regression input through the Release build (tests/io/
// fuzz_regressions_test.cpp). A target returns normally when the loader accepts the input or
// rejects it with perceiver::Error; anything else (a crash, a sanitizer report, another exception,
// a broken invariant such as a config that does not read back) is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace perceiver::fuzz {

// Thrown when a loader's own invariant fails (e.g. its output does not round-trip).
struct InvariantViolation : std::logic_error {
  using std::logic_error::logic_error;
};

struct Target {
  const char* name;  // also the folder under tests/fuzz/corpus and tests/fuzz/regressions
  void (*run)(const uint8_t* data, size_t size);
  const char* what;
};

const std::vector<Target>& targets();
const Target* find_target(const std::string& name);

}  // namespace perceiver::fuzz
