// The training plot: a PNG next to metrics.jsonl, redrawn after every evaluation, with the loss
// (left) and the accuracy (right) of the training batches (logged every log_every steps) and of
// the test set (after each epoch) against the step. Regression runs plot the test mean squared
// error on the right.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "perceiver/data/image_processor.h"

namespace perceiver::train {

// The plot of metrics records (the objects of metrics.jsonl; other types are ignored).
data::RgbImage training_plot(const std::vector<nlohmann::json>& records, int64_t width = 960, int64_t height = 400);

// Reads metrics_path (unreadable lines are skipped) and writes the plot to png_path atomically.
void write_training_plot(const std::string& metrics_path, const std::string& png_path);

}  // namespace perceiver::train
