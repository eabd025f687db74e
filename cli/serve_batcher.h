// Dynamic batching for `perceiver serve`: requests wait in one bounded queue; a single worker
// takes the oldest and, for up to max_wait after it arrived, every queued request with the same
// key (the same input names and shapes but for the batch dimension), up to max_batch examples,
// runs them as one batch (inputs joined along dim 0) and hands each request its rows of the
// outputs. A batch that fails is retried one request at a time, so one bad request cannot fail
// the others. stop() lets the worker finish what is queued.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include "perceiver/models/model.h"

namespace perceiver::cli {

class Batcher {
 public:
  using Run = std::function<models::TensorMap(const models::TensorMap& inputs)>;
  // Called after each batch with its number of examples.
  using OnBatch = std::function<void(int64_t examples)>;

  // init runs first on the worker thread (the compute threads' settings are per thread).
  Batcher(Run run, int64_t max_batch, std::chrono::microseconds max_wait, int64_t max_queue, OnBatch on_batch,
          std::function<void()> init = nullptr);
  ~Batcher();

  // Queues one request of `rows` examples (every input's dim 0, or 1 with batchable false: then
  // it runs alone). Throws QueueFull when max_queue requests are waiting.
  struct QueueFull {};
  std::future<models::TensorMap> submit(models::TensorMap inputs, bool batchable);
  // Queues work that is not a model call on inputs (fill-mask decodes only the masked
  // positions): it runs alone, in turn, on the same worker.
  std::future<models::TensorMap> submit(std::function<models::TensorMap()> task);
  int64_t queued() const;
  void stop();

 private:
  struct Job {
    std::string key;  // "" never batches
    int64_t rows = 1;
    models::TensorMap inputs;
    std::function<models::TensorMap()> task;  // set: run this instead of run_(inputs)
    std::promise<models::TensorMap> result;
    std::chrono::steady_clock::time_point arrived;
  };
  std::future<models::TensorMap> enqueue(Job job);
  void loop();
  void run_batch(std::vector<Job>& batch);

  Run run_;
  OnBatch on_batch_;
  std::function<void()> init_;
  int64_t max_batch_, max_queue_;
  std::chrono::microseconds max_wait_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace perceiver::cli
