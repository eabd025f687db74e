// Shared pieces of the task front ends (see tasks/common.h).
#include "perceiver/tasks/common.h"

#include <algorithm>
#include <numeric>

#include "perceiver/core/error.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/ops/reduce.h"

namespace perceiver::tasks {

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

void check_finite(const std::string& name, const Tensor& t, const std::string& command, const std::string& file,
                  const std::string& kind, bool allow) {
  if (allow || !t.defined()) return;
  const ops::NonFinite r = ops::count_nonfinite(t);
  if (r)
    throw_error("[", command, "] ", file, ": ", kind, " '", name, "' holds ", r.describe(),
                kind == "output" || kind == "gradient" || kind == "loss"
                    ? "; the inputs and weights are finite, so the computation overflowed"
                    : "",
                "; pass --allow-nonfinite (Python: allow_nonfinite=True) to accept non-finite values");
}

void check_finite(const std::map<std::string, Tensor>& tensors, const std::string& command, const std::string& file,
                  const std::string& kind, bool allow) {
  if (allow) return;
  for (const auto& [name, t] : tensors) check_finite(name, t, command, file, kind, false);
}

void check_finite_parameters(nn::Module& model, const std::string& command, const std::string& file, bool allow) {
  if (allow) return;
  model.visit_parameters([&](const std::string& name, Tensor& p) { check_finite(name, p, command, file, "weight", false); });
}

}  // namespace perceiver::tasks
