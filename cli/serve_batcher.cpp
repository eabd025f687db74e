// Dynamic batching for `perceiver serve` (see serve_batcher.h).
#include "serve_batcher.h"

#include <cstring>

#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/error.h"

namespace perceiver::cli {
namespace {

// The batching key: every input's name, dtype and shape without dim 0; "" when an input has no
// batch dimension or the inputs disagree on it.
std::string batch_key(const models::TensorMap& inputs, int64_t& rows) {
  std::string key;
  rows = -1;
  for (const auto& [name, t] : inputs) {
    if (t.rank() == 0 || (rows >= 0 && t.dim(0) != rows)) return "";
    rows = t.dim(0);
    key += name + ":" + dtype_name(t.dtype());
    for (int i = 1; i < t.rank(); ++i) key += "," + std::to_string(t.dim(i));
    key += ";";
  }
  return rows > 0 ? key : "";
}

// The jobs' inputs joined along dim 0.
models::TensorMap join(const std::vector<models::TensorMap*>& parts, int64_t rows) {
  models::TensorMap out;
  for (const auto& [name, first] : *parts[0]) {
    Shape shape = first.shape();
    shape[0] = rows;
    Tensor t = Tensor::empty(shape, first.dtype());
    char* dst = static_cast<char*>(t.raw_data());
    for (const models::TensorMap* p : parts) {
      const Tensor& src = p->at(name);
      std::memcpy(dst, src.cdata(), src.nbytes());
      dst += src.nbytes();
    }
    out[name] = t;
  }
  return out;
}

}  // namespace

Batcher::Batcher(Run run, int64_t max_batch, std::chrono::microseconds max_wait, int64_t max_queue, OnBatch on_batch,
                 std::function<void()> init)
    : run_(std::move(run)), on_batch_(std::move(on_batch)), init_(std::move(init)), max_batch_(max_batch),
      max_queue_(max_queue), max_wait_(max_wait) {
  worker_ = std::thread([this] {
    if (init_) init_();
    loop();
  });
}

Batcher::~Batcher() { stop(); }

std::future<models::TensorMap> Batcher::submit(models::TensorMap inputs, bool batchable) {
  Job job;
  job.key = batchable ? batch_key(inputs, job.rows) : "";
  if (job.key.empty()) job.rows = 1;
  job.inputs = std::move(inputs);
  return enqueue(std::move(job));
}

std::future<models::TensorMap> Batcher::submit(std::function<models::TensorMap()> task) {
  Job job;
  job.task = std::move(task);
  return enqueue(std::move(job));
}

std::future<models::TensorMap> Batcher::enqueue(Job job) {
  job.arrived = std::chrono::steady_clock::now();
  std::future<models::TensorMap> f = job.result.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || static_cast<int64_t>(queue_.size()) >= max_queue_) throw QueueFull{};
    queue_.push_back(std::move(job));
  }
  cv_.notify_all();
  return f;
}

int64_t Batcher::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(queue_.size());
}

void Batcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void Batcher::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything queued has run
    std::vector<Job> batch;
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
    int64_t rows = batch[0].rows;
    const std::string key = batch[0].key;
    const auto deadline = batch[0].arrived + max_wait_;
    while (!key.empty() && rows < max_batch_) {
      // take every queued job of the same key that fits
      for (auto it = queue_.begin(); it != queue_.end() && rows < max_batch_;) {
        if (it->key == key && rows + it->rows <= max_batch_) {
          rows += it->rows;
          batch.push_back(std::move(*it));
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      if (rows >= max_batch_ || stopping_ || std::chrono::steady_clock::now() >= deadline) break;
      cv_.wait_until(lock, deadline);
    }
    lock.unlock();
    run_batch(batch);
    lock.lock();
  }
}

void Batcher::run_batch(std::vector<Job>& batch) {
  autograd::NoGradGuard no_grad;
  int64_t rows = 0;
  for (const Job& j : batch) rows += j.rows;
  if (batch.size() > 1) {
    try {
      std::vector<models::TensorMap*> parts;
      for (Job& j : batch) parts.push_back(&j.inputs);
      const models::TensorMap out = run_(join(parts, rows));
      for (const auto& [name, t] : out)
        check(t.rank() > 0 && t.dim(0) == rows, "[serve] output '", name, "' has no batch dimension of ", rows);
      int64_t first = 0;
      for (Job& j : batch) {
        models::TensorMap mine;
        for (const auto& [name, t] : out) mine[name] = t.slice0(first, j.rows);
        first += j.rows;
        j.result.set_value(std::move(mine));
      }
      if (on_batch_) on_batch_(rows);
      return;
    } catch (const std::exception&) {
      // one request at a time below: each gets its own result or error
    }
  }
  for (Job& j : batch) {
    try {
      j.result.set_value(j.task ? j.task() : run_(j.inputs));
    } catch (...) {
      j.result.set_exception(std::current_exception());
    }
    if (on_batch_) on_batch_(j.rows);
  }
}

}  // namespace perceiver::cli
