// write_file_atomic / read_file: success, failure leaves the old file and no temp file behind.
#include "perceiver/io/atomic_file.h"

#include <gtest/gtest.h>
#include <algorithm>
#include <sys/wait.h>

#include <stdexcept>

#include "io_test_util.h"

namespace perceiver {
namespace {

using testing::TempDir;
using testing::throws_error;

TEST(AtomicFile, WritesAndOverwrites) {
  TempDir tmp;
  const std::string p = tmp.file("a.bin");
  io::write_file_atomic(p, std::string("first"));
  EXPECT_EQ(io::read_file(p), "first");
  io::write_file_atomic(p, [](std::FILE* f) { std::fputs("second, longer", f); });
  EXPECT_EQ(io::read_file(p), "second, longer");
  io::write_file_atomic(p, std::string());
  EXPECT_EQ(io::read_file(p), "");
  EXPECT_EQ(tmp.list(), std::vector<std::string>{"a.bin"});
}

TEST(AtomicFile, ThrowingWriterKeepsOldFileAndRemovesTemp) {
  TempDir tmp;
  const std::string p = tmp.file("model.safetensors");
  io::write_file_atomic(p, std::string("old contents"));
  EXPECT_THROW(io::write_file_atomic(p,
                                     [](std::FILE* f) {
                                       std::fputs("half of the new", f);
                                       std::fflush(f);
                                       throw std::runtime_error("disk on fire");
                                     }),
               std::runtime_error);
  EXPECT_EQ(io::read_file(p), "old contents");
  EXPECT_EQ(tmp.list(), std::vector<std::string>{"model.safetensors"});

  // Same for a perceiver::Error thrown by the writer, and for a brand-new path.
  const std::string q = tmp.file("new.bin");
  EXPECT_TRUE(throws_error(
      [&] { io::write_file_atomic(q, [](std::FILE*) { throw_error("[test] stop"); }); },
      {"[test] stop"}));
  EXPECT_EQ(tmp.list(), std::vector<std::string>{"model.safetensors"});
}

TEST(AtomicFile, MissingDirectoryIsAClearError) {
  TempDir tmp;
  const std::string p = tmp.file("no/such/dir/x.bin");
  EXPECT_TRUE(throws_error([&] { io::write_file_atomic(p, std::string("x")); },
                           {"[atomic_write] ", p, "No such file or directory"}));
}

TEST(ReadFile, Errors) {
  TempDir tmp;
  const std::string missing = tmp.file("missing.bin");
  EXPECT_TRUE(throws_error([&] { io::read_file(missing); },
                           {"[read_file] ", missing, "No such file or directory"}));
  EXPECT_TRUE(throws_error([&] { io::read_file(tmp.dir()); }, {"[read_file] ", "not a regular"}));
}

TEST(AtomicFile, StaleTempFilesOfDeadWritersAreRemoved) {
  TempDir tmp;
  // A pid that is not running: the child of a fork that has exited and been reaped.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  const std::string dead = "checkpoint.safetensors.tmp." + std::to_string(child);
  const std::string alive = "metrics.jsonl.tmp." + std::to_string(::getpid());
  for (const std::string& name : {dead, alive, std::string("notes.tmp.abc"), std::string("model.safetensors")})
    testing::write_bytes(tmp.file(name), "x");
  const std::vector<std::string> removed = io::remove_stale_temp_files(tmp.dir());
  EXPECT_EQ(removed, std::vector<std::string>{dead});
  std::vector<std::string> left = tmp.list();
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{alive, "model.safetensors", "notes.tmp.abc"}));
  EXPECT_TRUE(io::remove_stale_temp_files(tmp.file("missing-dir")).empty());
}

}  // namespace
}  // namespace perceiver
