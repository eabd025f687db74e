// Helpers for the tests of the HF task commands (fill-mask, classify, flow, autoencode): run the
// perceiver CLI with shell-quoted arguments and capture its exit code and output, and build
// hub-layout model folders from the fixtures (optionally with extra config.json fields).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include "parity/hf_parity_util.h"

namespace perceiver::testing {

struct CliRun {
  int code = -1;
  std::string out;  // stdout (and stderr when merged)
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs `perceiver ARGS...`; stderr is merged into out unless keep_stderr is false (then dropped).
inline CliRun run_perceiver(const std::vector<std::string>& args, bool merge_stderr = true) {
  std::string cmd = PERCEIVER_CLI_PATH;
  for (const std::string& a : args) cmd += " " + shell_quote(a);
  cmd += merge_stderr ? " 2>&1" : " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  CliRun r;
  if (!p) return r;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// A hub-layout folder of a fixture family under dir, with `extra` merged into config.json.
inline std::string make_family_folder(const std::string& family, const std::string& dir,
                                      const nlohmann::json& extra = nlohmann::json::object()) {
  HfFixture fx;
  fx.dir = hf_fixture_dir(family);
  fx.meta = read_json_file(fx.dir + "/config.json");
  make_hub_folder(fx, dir);
  if (!extra.empty()) {
    nlohmann::json cfg = read_json_file(dir + "/config.json");
    cfg.update(extra);
    std::ofstream(dir + "/config.json") << cfg.dump(2);
  }
  return dir;
}

}  // namespace perceiver::testing
