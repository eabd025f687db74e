// Shared helpers of the task commands (see hf_task_util.h).
#include "hf_task_util.h"

#include <algorithm>
#include <numeric>

namespace perceiver::cli {

namespace pio = models::perceiver_io;

std::unique_ptr<pio::PerceiverIO> load_task_model(const std::string& dir, const std::vector<pio::PerceiverTask>& tasks,
                                                  const std::string& command) {
  std::vector<std::string> accept;
  for (pio::PerceiverTask t : tasks) accept.push_back(pio::architecture_name(t));
  std::unique_ptr<models::Model> model = io::load_model_folder(dir, accept, command);
  std::unique_ptr<pio::PerceiverIO> task(dynamic_cast<pio::PerceiverIO*>(model.get()));
  PERCEIVER_CHECK(task != nullptr);  // every accepted class is a Perceiver IO task model
  model.release();
  return task;
}

std::vector<int64_t> top_indices(const float* p, int64_t n, int64_t k) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  k = std::clamp<int64_t>(k, 0, n);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [p](int64_t x, int64_t y) { return p[x] > p[y] || (p[x] == p[y] && x < y); });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

}  // namespace perceiver::cli
