// Data-parallel training across processes (issue 14), run through mpiexec on this machine:
// 2 processes x 1 thread compute exactly what one process computes in 2 batch slices (same parts,
// same dropout streams, gradients summed in the same order), and match the whole-batch step
// within float rounding; every process holds the same bits after every step (--check-replicas);
// a run resumes with a different number of processes; a process that dies or hangs ends the job
// within a bounded time, leaving the last checkpoint intact for --resume.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "perceiver/io/safetensors.h"
#include "perceiver/train/checkpoint.h"
#include "testing/shell.h"
#include "testing/tiny_data.h"

namespace perceiver {
namespace {

#ifdef PERCEIVER_MPIEXEC

using Proc = testing::ShellResult;
Proc sh(const std::string& cmd) { return testing::run_shell(cmd); }

std::string cli() { return std::string(PERCEIVER_CLI_PATH); }
std::string mpiexec(int n) { return std::string(PERCEIVER_MPIEXEC) + " -n " + std::to_string(n) + " "; }

// The tiny Perceiver of the CLI tests, by default with dropout so that the parts' streams matter.
std::string write_config(const std::string& dir, int epochs, int max_steps = 0, double dropout = 0.1) {
  const std::string path = dir + "/cfg_" + std::to_string(epochs) + "_" + std::to_string(max_steps) + "_" +
                           std::to_string(dropout) + ".json";
  std::ofstream(path) << R"({"model": {"num_latents": 4, "d_latents": 16, "num_fourier_bands": 2,
    "self_attention_heads": 2, "self_attends_per_block": 1, "dropout": )" << dropout << R"(},
    "train": {"epochs": )" << epochs << R"(, "batch_size": 10, "warmup_steps": 2, "max_steps": )" << max_steps << R"(,
              "log_every": 1},
    "data": {"dir": ")" << dir << R"(", "max_shift": 1}})";
  return path;
}

std::map<std::string, Tensor> read_all(const std::string& path) {
  io::SafetensorsFile f = io::load_safetensors(path);
  return std::map<std::string, Tensor>(f.tensors.begin(), f.tensors.end());
}

// Largest |a - b| / max(1, |b|) over the float tensors of two checkpoints (parameters and
// optimizer state) whose name does not contain `skip` (if given); identical: every bit equal.
double max_difference(const std::string& a, const std::string& b, bool* identical, const std::string& skip = "") {
  auto x = read_all(a), y = read_all(b);
  EXPECT_EQ(x.size(), y.size());
  double worst = 0;
  *identical = true;
  for (auto& [name, t] : y) {
    if (!x.count(name) || t.dtype() != DType::kF32) continue;
    if (!skip.empty() && name.find(skip) != std::string::npos) continue;
    const std::vector<float> u = x.at(name).to_vector(), v = t.to_vector();
    EXPECT_EQ(u.size(), v.size()) << name;
    for (size_t i = 0; i < std::min(u.size(), v.size()); ++i) {
      *identical &= std::memcmp(&u[i], &v[i], sizeof(float)) == 0;
      worst = std::max(worst, std::abs(double(u[i]) - v[i]) / std::max(1.0, std::abs(double(v[i]))));
    }
  }
  return worst;
}

class Distributed : public ::testing::Test {
 protected:
  void SetUp() override { testing::make_tiny_fashion_mnist(tmp.path, 100, 20); }
  testing::TempDir tmp;
};

TEST_F(Distributed, TwoProcessesEqualTwoSlicesBitForBitAndTheWholeBatchWithinRounding) {
  const std::string cfg = write_config(tmp.path, 2);  // 20 steps of 10 examples, dropout 0.1
  // Tiny buckets (2 KiB): several per step, started while backward runs.
  const Proc two = sh(mpiexec(2) + cli() + " train --threads 1 --check-replicas --bucket-mib 0.002 --config " +
                     cfg + " --out " + tmp.path + "/two");
  ASSERT_EQ(two.code, 0) << two.out;
  EXPECT_NE(two.out.find("2 processes x 1 threads"), std::string::npos) << two.out;
  EXPECT_NE(two.out.find("140 of 140 buckets started during backward"), std::string::npos) << two.out;
  const Proc slices = sh(cli() + " train --quiet --threads 2 --set train.parallelism=batch --config " + cfg +
                        " --out " + tmp.path + "/slices");
  ASSERT_EQ(slices.code, 0) << slices.out;
  bool identical = false;
  const double vs_slices = max_difference(tmp.path + "/two/checkpoint.safetensors",
                                          tmp.path + "/slices/checkpoint.safetensors", &identical);
  EXPECT_TRUE(identical) << "2 processes vs 2 slices in one process: worst relative difference " << vs_slices;
  const bool identical_to_slices = identical;
  // Only rank 0 writes: one line per step and per epoch.
  std::ifstream metrics(tmp.path + "/two/metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(metrics, line);) ++lines;
  EXPECT_EQ(lines, 20 + 2);

  // Without dropout the whole batch in one process takes the same steps up to summation order.
  const std::string plain = write_config(tmp.path, 2, 0, 0.0);
  ASSERT_EQ(sh(mpiexec(2) + cli() + " train --quiet --threads 1 --config " + plain + " --out " + tmp.path + "/two0").code, 0);
  ASSERT_EQ(sh(cli() + " train --quiet --threads 1 --config " + plain + " --out " + tmp.path + "/whole").code, 0);
  // The key biases are skipped: their exact gradient is 0 (softmax ignores a constant per query),
  // so their computed gradient is rounding noise that AdamW scales up to steps of ~lr either way.
  const double vs_whole = max_difference(tmp.path + "/two0/checkpoint.safetensors",
                                         tmp.path + "/whole/checkpoint.safetensors", &identical, "key.bias");
  EXPECT_LT(vs_whole, 1e-6) << "2 processes vs the whole batch in one process, after 20 AdamW steps";
  std::printf("2 processes vs 2 slices: %s; vs the whole batch: worst relative difference %.3g after 20 steps\n",
              identical_to_slices ? "identical" : "DIFFERENT", vs_whole);
}

TEST_F(Distributed, ResumesWithADifferentNumberOfProcesses) {
  const std::string stop = write_config(tmp.path, 2, 7), cfg = write_config(tmp.path, 2);
  // 7 steps on 2 processes, then the rest in one process in 2 slices, = 20 steps on 2 processes.
  ASSERT_EQ(sh(mpiexec(2) + cli() + " train --quiet --threads 1 --config " + stop + " --out " + tmp.path + "/r").code, 0);
  EXPECT_EQ(train::read_checkpoint(tmp.path + "/r/checkpoint.safetensors").step, 7);
  const Proc rest = sh(cli() + " train --quiet --resume --threads 2 --set train.parallelism=batch --set train.max_steps=0 "
                      "--config " + cfg + " --out " + tmp.path + "/r");
  ASSERT_EQ(rest.code, 0) << rest.out;
  ASSERT_EQ(sh(mpiexec(2) + cli() + " train --quiet --threads 1 --config " + cfg + " --out " + tmp.path + "/u").code, 0);
  bool identical = false;
  const double d = max_difference(tmp.path + "/r/checkpoint.safetensors", tmp.path + "/u/checkpoint.safetensors", &identical);
  EXPECT_TRUE(identical) << "resumed in one process vs uninterrupted on two: worst relative difference " << d;
  // And the other way: one process, then two.
  ASSERT_EQ(sh(cli() + " train --quiet --threads 2 --set train.parallelism=batch --config " + stop + " --out " +
               tmp.path + "/s").code, 0);
  const Proc more = sh(mpiexec(2) + cli() + " train --quiet --resume --threads 1 --set train.max_steps=0 --config " + cfg +
                      " --out " + tmp.path + "/s");
  ASSERT_EQ(more.code, 0) << more.out;
  EXPECT_LT(max_difference(tmp.path + "/s/checkpoint.safetensors", tmp.path + "/u/checkpoint.safetensors", &identical), 1e-30);
  EXPECT_TRUE(identical);
}

TEST_F(Distributed, BatchesOfAnySizeSplitAndTooSmallOnesAreRefused) {
  // No dropout: one process steps a batch of one example whole, not as a part with its own stream.
  const std::string cfg = write_config(tmp.path, 1, 0, 0.0);
  const Proc r = sh(mpiexec(2) + cli() + " train --quiet --threads 1 --set train.batch_size=1 --config " + cfg +
                    " --out " + tmp.path + "/b");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("at least the number of processes"), std::string::npos) << r.out;
  // 100 examples in batches of 99: the epoch's last batch holds one example, rank 1 none of it.
  const Proc two = sh(mpiexec(2) + cli() + " train --quiet --threads 1 --check-replicas --set train.batch_size=99 "
                      "--config " + cfg + " --out " + tmp.path + "/odd2");
  ASSERT_EQ(two.code, 0) << two.out;
  const Proc slices = sh(cli() + " train --quiet --threads 2 --set train.parallelism=batch --set train.batch_size=99 "
                         "--config " + cfg + " --out " + tmp.path + "/odd1");
  ASSERT_EQ(slices.code, 0) << slices.out;
  bool identical = false;
  max_difference(tmp.path + "/odd2/checkpoint.safetensors", tmp.path + "/odd1/checkpoint.safetensors", &identical);
  EXPECT_TRUE(identical);
}

// A launcher that does not connect the processes (here: only its environment variable) would
// leave N independent runs writing one directory: refused with the reason.
TEST_F(Distributed, ALauncherThatDoesNotMatchThisMpiIsRefused) {
  const std::string cfg = write_config(tmp.path, 1);
  const Proc r = sh("env PMI_SIZE=2 " + cli() + " train --quiet --threads 1 --config " + cfg + " --out " + tmp.path + "/m");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("the launcher started 2 processes but MPI sees 1"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(tmp.path + "/m/checkpoint.safetensors"));
}

// The pid of rank `rank` among the processes whose command line holds `marker`.
pid_t rank_pid(const std::string& marker, int rank) {
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream cmd(e.path() / "cmdline"), env(e.path() / "environ");
    std::string c((std::istreambuf_iterator<char>(cmd)), {}), v((std::istreambuf_iterator<char>(env)), {});
    std::replace(c.begin(), c.end(), '\0', ' ');  // arguments are NUL-separated
    if (c.find(marker) == std::string::npos || c.find("train") == std::string::npos) continue;
    if (v.find(std::string("PMI_RANK=") + std::to_string(rank) + '\0') != std::string::npos &&
        c.rfind(cli(), 0) == 0)
      return static_cast<pid_t>(std::stol(pid));
  }
  return -1;
}

// Starts a long 2-process run, waits for its first checkpoint, then hits rank 1 with `sig`;
// the job must end by itself within `limit_s`, with a non-zero status and the reason.
void fault(const std::string& dir, int sig, double limit_s, const std::string& why) {
  const std::string cfg = write_config(dir, 1000), out = dir + "/f" + std::to_string(sig), log = out + ".log";
  std::filesystem::create_directories(out);
  const std::string cmd = mpiexec(2) + cli() + " train --quiet --threads 1 --mpi-timeout 4 --config " + cfg +
                          " --out " + out + " > " + log + " 2>&1";
  const pid_t job = fork();
  if (job == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), (char*)nullptr);
    _exit(127);
  }
  const std::string ckpt = out + "/checkpoint.safetensors";
  for (int i = 0; i < 600 && !std::filesystem::exists(ckpt); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  pid_t victim = -1;
  for (int i = 0; i < 50 && victim < 0; ++i, std::this_thread::sleep_for(std::chrono::milliseconds(100)))
    victim = rank_pid("--out " + out, 1);
  if (!std::filesystem::exists(ckpt) || victim < 0) {
    kill(job, SIGKILL);
    waitpid(job, nullptr, 0);
    FAIL() << "the run did not start (checkpoint " << std::filesystem::exists(ckpt) << ", rank 1 pid " << victim << ")";
  }
  const auto t0 = std::chrono::steady_clock::now();
  kill(victim, sig);
  int status = 0;
  pid_t done = 0;
  while ((done = waitpid(job, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() - t0 < std::chrono::duration<double>(limit_s + 30))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (done == 0) {  // still running: clean up, then fail
    kill(victim, SIGKILL);
    kill(job, SIGKILL);
    waitpid(job, &status, 0);
  }
  std::ifstream in(log);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  ASSERT_NE(done, 0) << "the job did not end within " << limit_s + 30 << " s:\n" << text;
  EXPECT_LT(took, limit_s) << text;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << text;
  EXPECT_NE(text.find(why), std::string::npos) << text;
  std::printf("rank 1 hit by signal %d: the job ended in %.1f s\n", sig, took);
  // The last checkpoint is intact and the run continues from it.
  const int64_t step = train::read_checkpoint(ckpt).step;
  EXPECT_GT(step, 0);
  const Proc resumed = sh(mpiexec(2) + cli() + " train --quiet --resume --threads 1 --set train.max_steps=" +
                         std::to_string(step + 3) + " --config " + cfg + " --out " + out);
  EXPECT_EQ(resumed.code, 0) << resumed.out;
  EXPECT_EQ(train::read_checkpoint(ckpt).step, step + 3);
}

TEST_F(Distributed, AProcessThatDiesEndsTheJob) { fault(tmp.path, SIGKILL, 15, "BAD TERMINATION"); }

TEST_F(Distributed, AProcessThatHangsEndsTheJobAfterTheTimeout) {
  fault(tmp.path, SIGSTOP, 15, "no answer from rank(s) 1 within 4 s");
}

#else
TEST(Distributed, NeedsMpi) { GTEST_SKIP() << "built without MPI (PERCEIVER_MPI=OFF)"; }
#endif

}  // namespace
}  // namespace perceiver
