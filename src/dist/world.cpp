// MPI behind dist/world.h. Built with PERCEIVER_HAVE_MPI (Debian's MPICH); without it the
// world is one process and a multi-process launch is refused.
#include "perceiver/dist/world.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <thread>
#include <utility>

#include "perceiver/core/error.h"

#ifdef PERCEIVER_HAVE_MPI
#include <mpi.h>
#endif

namespace perceiver::dist {
namespace {

int g_rank = 0, g_size = 1;
bool g_mpi_started = false;  // MPI_Init was called (possibly a world of one under a launcher)
double g_timeout_s = 300.0;

long env_int(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::strtol(v, nullptr, 10) : 0;
}

}  // namespace

// The number of processes the launcher says it started (1 if none says more). SLURM_STEP_NUM_TASKS
// is srun's (a batch script's own step has none), not SLURM_NTASKS (the whole allocation's).
long launched_processes() {
  long n = 1;
  for (const char* name : {"PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", "SLURM_STEP_NUM_TASKS"})
    n = std::max(n, env_int(name));
  return n;
}

bool launched_with_several_processes() { return launched_processes() > 1; }

bool active() { return g_size > 1; }
int rank() { return g_rank; }
int size() { return g_size; }

void set_timeout(double seconds) {
  check(seconds > 0, "[dist] the wait timeout must be positive, got ", seconds, " s");
  g_timeout_s = seconds;
}
double timeout() { return g_timeout_s; }

#ifdef PERCEIVER_HAVE_MPI
namespace {

MPI_Comm g_comm = MPI_COMM_NULL;

void mpi_check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  abort_job(std::string("MPI failed in ") + what + ": " + std::string(text, static_cast<size_t>(len)));
}

// Waits for every request; past the timeout, names the ranks still owed (peers[i] for
// requests[i], -1 for a collective) and aborts the job.
void wait_all(std::vector<MPI_Request>& requests, const std::vector<int>& peers, const char* what) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::duration<double>(g_timeout_s);
  for (int spins = 0;; ++spins) {
    int done = 0;
    mpi_check(MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE), what);
    if (done) return;
    if (Clock::now() > deadline) {
      // Testall leaves every handle as it was; Testsome retires the finished ones.
      std::vector<int> finished(requests.size());
      int count = 0;
      MPI_Testsome(static_cast<int>(requests.size()), requests.data(), &count, finished.data(), MPI_STATUSES_IGNORE);
      std::vector<int> late;  // the peers of the requests still open (-1: a collective's)
      for (size_t i = 0; i < requests.size(); ++i)
        if (requests[i] != MPI_REQUEST_NULL) {
          const int peer = peers.empty() ? -1 : peers[i];
          if (std::find(late.begin(), late.end(), peer) == late.end()) late.push_back(peer);
        }
      std::sort(late.begin(), late.end());
      std::string missing = late.empty() || late[0] < 0 ? "at least one other rank" : "rank(s) ";
      if (!late.empty() && late[0] >= 0)
        for (size_t i = 0; i < late.size(); ++i) missing += (i ? ", " : "") + std::to_string(late[i]);
      char line[160];
      std::snprintf(line, sizeof(line), "no answer from %s within %.0f s (", missing.c_str(), g_timeout_s);
      abort_job(std::string(line) + what + "): a process died or hangs; ending the job. The last checkpoint is "
                "intact: continue with --resume (--mpi-timeout sets this limit)");
    }
    // Spin briefly for the common short wait, then yield the core to the computing ranks.
    if (spins > 200) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

}  // namespace

void init(int* argc, char*** argv) {
  if (!launched_with_several_processes() || g_mpi_started) return;
  int provided = 0;
  mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  g_mpi_started = true;
  MPI_Comm_dup(MPI_COMM_WORLD, &g_comm);
  MPI_Comm_rank(g_comm, &g_rank);
  MPI_Comm_size(g_comm, &g_size);
  // A launcher that does not speak this MPI's process-management protocol (another MPI's mpirun,
  // srun without --mpi=pmi2) leaves every process a world of one: N independent runs writing
  // one output directory. Refuse that.
  if (g_size != launched_processes())
    abort_job("the launcher started " + std::to_string(launched_processes()) + " processes but MPI sees " +
              std::to_string(g_size) + " in this one's world: the launcher does not match this MPI (MPICH): start "
              "with MPICH's mpiexec, or srun --mpi=pmi2");
}

void finalize() {
  if (!g_mpi_started) return;
  MPI_Comm_free(&g_comm);
  MPI_Finalize();
  g_mpi_started = false;
  g_rank = 0;
  g_size = 1;
}

void abort_job(const std::string& why) {
  std::fprintf(stderr, "perceiver: error: rank %d of %d: %s\n", g_rank, g_size, why.c_str());
  std::fflush(stderr);
  if (g_mpi_started) {
    // MPICH's launcher forwards each rank's stderr through its proxies asynchronously, and
    // MPI_Abort tears them down: without a pause the reason can be lost on a busy host (seen in CI)
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  std::_Exit(1);
}

void broadcast(void* data, int64_t bytes, int root, const char* what) {
  if (!active()) return;
  char* p = static_cast<char*>(data);
  for (int64_t done = 0; done < bytes;) {  // MPI counts are int: pieces of at most 1 GiB
    const int n = static_cast<int>(std::min<int64_t>(bytes - done, int64_t(1) << 30));
    std::vector<MPI_Request> r(1);
    mpi_check(MPI_Ibcast(p + done, n, MPI_BYTE, root, g_comm, &r[0]), what);
    wait_all(r, {}, what);
    done += n;
  }
}

// For every other rank r: a receive of recv(r) = {buffer, count} and a send of send(r), both
// with `tag`; the requests (and the rank each waits on) are appended for wait_all / Testall.
template <class Recv, class Send>
void post_exchange(MPI_Datatype type, int tag, Recv recv, Send send, std::vector<MPI_Request>& requests,
                   std::vector<int>& peers) {
  for (int r = 0; r < g_size; ++r) {
    if (r == g_rank) continue;
    const auto [in, in_count] = recv(r);
    const auto [out, out_count] = send(r);
    requests.emplace_back();
    MPI_Irecv(in, static_cast<int>(in_count), type, r, tag, g_comm, &requests.back());
    requests.emplace_back();
    MPI_Isend(out, static_cast<int>(out_count), type, r, tag, g_comm, &requests.back());
    peers.insert(peers.end(), {r, r});
  }
}

// Point to point rather than MPI_Iallgather, so that a timeout can name the ranks that are late.
void allgather(const void* mine, int64_t bytes, void* all, const char* what) {
  char* out = static_cast<char*>(all);
  std::memcpy(out + bytes * g_rank, mine, static_cast<size_t>(bytes));
  if (!active()) return;
  check(bytes < (int64_t(1) << 31), "[dist] allgather of ", bytes, " bytes per rank is too large");
  constexpr int kTag = 30000;  // above OrderedSum's tags
  std::vector<MPI_Request> requests;
  std::vector<int> peers;
  post_exchange(MPI_BYTE, kTag, [&](int r) { return std::make_pair(static_cast<void*>(out + bytes * r), bytes); },
                [&](int) { return std::make_pair(mine, bytes); }, requests, peers);
  wait_all(requests, peers, what);
}

struct OrderedSum::Impl {
  enum class State { kIdle, kScatter, kGather, kDone } state = State::kIdle;
  float* data = nullptr;
  int tag = 0;
  std::vector<int64_t> offsets;      // chunk r = [offsets[r], offsets[r + 1])
  std::vector<float> incoming;       // every rank's copy of this rank's chunk, rank-major
  std::vector<MPI_Request> requests;
  std::vector<int> peers;

  int64_t chunk(int r) const { return offsets[r + 1] - offsets[r]; }

  void begin_gather() {
    // Sum this rank's chunk in rank order: ((c_0 + c_1) + c_2) ..., c_rank being our own.
    const int64_t n = chunk(g_rank);
    float* own = data + offsets[g_rank];
    std::memcpy(incoming.data() + g_rank * n, own, sizeof(float) * n);  // our slot of incoming was unused
    std::memcpy(own, incoming.data(), sizeof(float) * n);
    for (int r = 1; r < g_size; ++r) {
      const float* c = incoming.data() + r * n;
      for (int64_t i = 0; i < n; ++i) own[i] += c[i];
    }
    requests.clear();
    peers.clear();
    post_exchange(MPI_FLOAT, 2 * tag + 1, [&](int r) { return std::make_pair(data + offsets[r], chunk(r)); },
                  [&](int) { return std::make_pair(own, n); }, requests, peers);
    state = State::kGather;
  }
};

OrderedSum::OrderedSum() : impl_(std::make_unique<Impl>()) {}
OrderedSum::~OrderedSum() {
  // While an exception unwinds, the job is about to be aborted (cli/train_cmd.cpp): waiting here
  // for ranks that may never answer would only hide the error behind a timeout.
  if (std::uncaught_exceptions() > 0) return;
  if (impl_->state == Impl::State::kScatter || impl_->state == Impl::State::kGather)
    wait("an unfinished gradient sum at shutdown");
}

bool OrderedSum::started() const { return impl_->state != Impl::State::kIdle; }

void OrderedSum::start(float* data, int64_t count, int tag) {
  Impl& s = *impl_;
  PERCEIVER_CHECK(s.state == Impl::State::kIdle || s.state == Impl::State::kDone);
  check(tag >= 0 && tag < 8192, "[dist] OrderedSum tag must be in [0, 8192), got ", tag);
  s.data = data;
  s.tag = tag;
  s.offsets.resize(g_size + 1);
  for (int r = 0; r <= g_size; ++r) s.offsets[r] = count * r / g_size;
  check(count / g_size < (int64_t(1) << 31), "[dist] a gradient bucket of ", count, " floats is too large");
  if (!active()) {
    s.state = Impl::State::kDone;
    return;
  }
  const int64_t own = s.chunk(g_rank);
  s.incoming.assign(static_cast<size_t>(own * g_size), 0.0f);
  s.requests.clear();
  s.peers.clear();
  post_exchange(MPI_FLOAT, 2 * tag, [&](int r) { return std::make_pair(s.incoming.data() + r * own, own); },
                [&](int r) { return std::make_pair(data + s.offsets[r], s.chunk(r)); }, s.requests, s.peers);
  s.state = Impl::State::kScatter;
}

bool OrderedSum::progress() {
  Impl& s = *impl_;
  for (;;) {
    if (s.state == Impl::State::kDone || s.state == Impl::State::kIdle) return s.state == Impl::State::kDone;
    int done = 0;
    mpi_check(MPI_Testall(static_cast<int>(s.requests.size()), s.requests.data(), &done, MPI_STATUSES_IGNORE),
              "a gradient sum");
    if (!done) return false;
    if (s.state == Impl::State::kScatter) s.begin_gather();
    else s.state = Impl::State::kDone;
  }
}

void OrderedSum::wait(const char* what) {
  Impl& s = *impl_;
  while (!progress()) {
    wait_all(s.requests, s.peers, what);
  }
}

void allreduce_max(std::vector<int64_t>& values, const char* what) {
  if (!active()) return;
  const size_t n = values.size();
  std::vector<int64_t> all(n * static_cast<size_t>(g_size));
  allgather(values.data(), static_cast<int64_t>(n * sizeof(int64_t)), all.data(), what);
  for (int r = 0; r < g_size; ++r)
    for (size_t i = 0; i < n; ++i) values[i] = std::max(values[i], all[static_cast<size_t>(r) * n + i]);
}

#else  // no MPI in this build

void init(int*, char***) {
  if (launched_with_several_processes())
    throw_error("[dist] started as one of several processes (mpiexec/srun), but this perceiver was built without "
                "MPI (cmake -DPERCEIVER_MPI=OFF); rebuild with MPI (scripts/setup.sh installs MPICH) or run one process");
}
void finalize() {}
void abort_job(const std::string& why) {
  std::fprintf(stderr, "perceiver: error: %s\n", why.c_str());
  std::_Exit(1);
}
void broadcast(void*, int64_t, int, const char*) {}
void allgather(const void* mine, int64_t bytes, void* all, const char*) {
  std::memcpy(all, mine, static_cast<size_t>(bytes));
}
void allreduce_max(std::vector<int64_t>&, const char*) {}

struct OrderedSum::Impl {
  bool started = false;
};
OrderedSum::OrderedSum() : impl_(std::make_unique<Impl>()) {}
OrderedSum::~OrderedSum() = default;
bool OrderedSum::started() const { return impl_->started; }
void OrderedSum::start(float*, int64_t, int) { impl_->started = true; }
bool OrderedSum::progress() { return true; }
void OrderedSum::wait(const char*) {}

#endif

void allreduce_sum_ordered(std::vector<double>& values, const char* what) {
  if (!active()) return;
  const size_t n = values.size();
  std::vector<double> all(n * static_cast<size_t>(g_size));
  allgather(values.data(), static_cast<int64_t>(n * sizeof(double)), all.data(), what);
  for (size_t i = 0; i < n; ++i) {
    double s = all[i];
    for (int r = 1; r < g_size; ++r) s += all[static_cast<size_t>(r) * n + i];
    values[i] = s;
  }
}

}  // namespace perceiver::dist
