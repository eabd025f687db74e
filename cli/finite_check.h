// NaN and Inf at the command boundary: inputs, weights and outputs are checked, and any
// non-finite value is an error naming the tensor, unless the user passes --allow-nonfinite.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <string>

#include "perceiver/core/tensor.h"
#include "perceiver/nn/module.h"

namespace perceiver::cli {

// --allow-nonfinite: accept NaN/Inf in inputs and weights and write non-finite outputs.
void add_nonfinite_option(CLI::App& sub, bool& allow);

// Throws "[command] file: <kind> 'name' holds 3 non-finite values (first: nan at element 7); ..."
// for the first tensor with NaN/Inf (kind: "input", "output", "gradient"); no-op when allowed.
void check_finite(const std::map<std::string, Tensor>& tensors, const std::string& command, const std::string& file,
                  const std::string& kind, bool allow);
void check_finite(const std::string& name, const Tensor& t, const std::string& command, const std::string& file,
                  const std::string& kind, bool allow);
// Every parameter of a loaded model ("weight" in messages; file names the weights).
void check_finite_parameters(nn::Module& model, const std::string& command, const std::string& file, bool allow);

}  // namespace perceiver::cli
