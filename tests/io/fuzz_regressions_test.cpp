// Every committed fuzz seed (tests/fuzz/corpus/<target>) and every regression input
// (tests/fuzz/regressions/<target>: reproducers of past findings, incl. the 2026-12-04 campaign's)
// through the same targets the libFuzzer harnesses run, in this Release build: each input is
// accepted or rejected with perceiver::Error, never a crash, another exception or a broken
// invariant.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "fuzz/targets.h"
#include "perceiver/core/error.h"

namespace perceiver {
namespace {

std::vector<std::string> inputs_of(const std::string& target) {
  std::vector<std::string> files;
  for (const char* kind : {"corpus", "regressions"}) {
    const std::filesystem::path dir = std::filesystem::path(PERCEIVER_SOURCE_DIR) / "tests/fuzz" / kind / target;
    if (!std::filesystem::is_directory(dir)) continue;
    for (const auto& e : std::filesystem::directory_iterator(dir))
      if (e.is_regular_file()) files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

class FuzzRegressions : public ::testing::TestWithParam<std::string> {};

TEST_P(FuzzRegressions, EveryInputIsAcceptedOrCleanlyRejected) {
  const fuzz::Target* target = fuzz::find_target(GetParam());
  ASSERT_NE(target, nullptr);
  const std::vector<std::string> files = inputs_of(GetParam());
  EXPECT_GE(files.size(), 2u) << "target " << GetParam() << " has no committed seeds";
  for (const std::string& path : files) {
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    try {
      target->run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    } catch (const std::exception& e) {
      ADD_FAILURE() << path << ": " << e.what();
    }
  }
}

std::vector<std::string> target_names() {
  std::vector<std::string> names;
  for (const fuzz::Target& t : fuzz::targets()) names.push_back(t.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzRegressions, ::testing::ValuesIn(target_names()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace perceiver
