// Runs a shell command line and returns its exit code and its output (stdout and stderr
// together): the tests' one way to drive the `perceiver` program (and mpiexec) from outside.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace perceiver::testing {

struct ShellResult {
  int code;         // the exit status, or 128 + the signal that ended it
  std::string out;  // stdout and stderr, interleaved
};

inline ShellResult run_shell(const std::string& command) {
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
}

// `perceiver ARGS`
inline ShellResult run_cli(const std::string& args) { return run_shell(std::string(PERCEIVER_CLI_PATH) + " " + args); }

}  // namespace perceiver::testing
