// Error type and checks. API, input, config and I/O problems throw perceiver::Error whose
// message starts with "[op_or_file] " and states what was expected and what arrived.
// Kernels never throw: all validation happens in ops/ and above.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace perceiver {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

// throw_error("[linear] expected ", a, " got ", b)
template <typename... Args>
[[noreturn]] void throw_error(const Args&... args) {
  throw Error(detail::concat(args...));
}

// check(cond, "[op] message parts...") throws Error when cond is false.
template <typename... Args>
inline void check(bool cond, const Args&... args) {
  if (!cond) throw_error(args...);
}

}  // namespace perceiver

// Internal invariant (always on); a failure is a bug in perceiver.cpp, not bad input.
#define PERCEIVER_CHECK(cond)                                                          \
  do {                                                                                 \
    if (!(cond))                                                                       \
      ::perceiver::throw_error("[internal] ", __FILE__, ":", __LINE__, " check failed: ", #cond); \
  } while (0)
