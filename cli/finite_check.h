// NaN and Inf at the command boundary: inputs, weights and outputs are checked (tasks/common.h),
// and any non-finite value is an error naming the tensor, unless the user passes --allow-nonfinite.
#pragma once

#include <CLI/CLI.hpp>

#include "perceiver/tasks/common.h"

namespace perceiver::cli {

using tasks::check_finite;
using tasks::check_finite_parameters;

// --allow-nonfinite: accept NaN/Inf in inputs and weights and write non-finite outputs.
void add_nonfinite_option(CLI::App& sub, bool& allow);

}  // namespace perceiver::cli
