// What every task front end (the CLI commands, the Python module, the HTTP server) shares:
// loading a Perceiver IO folder of the classes a task needs, ranking scores, and the NaN/Inf
// checks at the boundary (inputs, weights and outputs; an error names the tensor unless the
// caller allows non-finite values).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "perceiver/core/tensor.h"
#include "perceiver/models/perceiver_io/perceiver_io.h"
#include "perceiver/nn/module.h"

namespace perceiver::tasks {

// A Perceiver IO model folder whose class is one of `tasks`; otherwise an Error such as
// "[flow] DIR: expected a PerceiverForOpticalFlow model folder, got PerceiverForMaskedLM".
std::unique_ptr<models::perceiver_io::PerceiverIO> load_task_model(
    const std::string& dir, const std::vector<models::perceiver_io::PerceiverTask>& tasks, const std::string& command);

// Indices of the k largest values of p[0..n), largest first (ties: lower index first).
std::vector<int64_t> top_indices(const float* p, int64_t n, int64_t k);

// Throws "[command] file: <kind> 'name' holds 3 non-finite values (first: nan at element 7); ..."
// for the first tensor with NaN/Inf (kind: "input", "output", "gradient", "weight"); no-op when
// allowed.
void check_finite(const std::map<std::string, Tensor>& tensors, const std::string& command, const std::string& file,
                  const std::string& kind, bool allow);
void check_finite(const std::string& name, const Tensor& t, const std::string& command, const std::string& file,
                  const std::string& kind, bool allow);
// Every parameter of a loaded model ("weight" in messages; file names the weights).
void check_finite_parameters(nn::Module& model, const std::string& command, const std::string& file, bool allow);

}  // namespace perceiver::tasks
