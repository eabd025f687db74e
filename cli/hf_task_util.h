// Helpers shared by the task commands (fill-mask, classify, flow, autoencode, run, grad): loading
// a model folder of the classes a command needs (through the one reader, io::load_model_folder)
// and ranking scores.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "perceiver/core/error.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/models/perceiver_io/perceiver_io.h"

namespace perceiver::cli {

// A Perceiver IO model folder whose class is one of `tasks`; otherwise an Error such as
// "[flow] DIR: expected a PerceiverForOpticalFlow model folder, got PerceiverForMaskedLM".
std::unique_ptr<models::perceiver_io::PerceiverIO> load_task_model(
    const std::string& dir, const std::vector<models::perceiver_io::PerceiverTask>& tasks, const std::string& command);

// Indices of the k largest values of p[0..n), largest first (ties: lower index first).
std::vector<int64_t> top_indices(const float* p, int64_t n, int64_t k);

}  // namespace perceiver::cli
