// Subcommands of the `perceiver` program. Each registers its flags on a CLI11 subcommand and
// returns the callback that runs it (exit code).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "perceiver/core/precision.h"
#include "perceiver/nn/module.h"
#include "perceiver/tasks/optical_flow.h"

namespace perceiver::cli {

using Runner = std::function<int()>;

Runner add_train_command(CLI::App& app);
Runner add_eval_command(CLI::App& app);
Runner add_predict_command(CLI::App& app);
Runner add_run_command(CLI::App& app);
Runner add_grad_command(CLI::App& app);
Runner add_convert_command(CLI::App& app);
Runner add_fill_mask_command(CLI::App& app);
Runner add_tag_command(CLI::App& app);
Runner add_classify_command(CLI::App& app);
Runner add_flow_command(CLI::App& app);
Runner add_flow_eval_command(CLI::App& app);
Runner add_flow_synth_command(CLI::App& app);
Runner add_autoencode_command(CLI::App& app);
Runner add_serve_command(CLI::App& app);
Runner add_attention_command(CLI::App& app);

// Applies the options every command shares (--threads, --gemm).
struct CommonOptions {
  int threads = 0;
  std::string gemm;
  std::string precision = "f32";  // inference commands only (add_precision_option)
  bool allow_nonfinite = false;   // add_nonfinite_option (finite_check.h)
  bool skip_memory_check = false;
};
void add_common_options(CLI::App& sub, CommonOptions& o);
void apply_common_options(const CommonOptions& o);
// --precision f32|bf16 for the inference commands; precision() parses it. apply_precision sets
// it on a loaded model for inference only: in bf16 the Linear weights are replaced by bf16
// copies and the released fp32 memory is given back to the system.
void add_precision_option(CLI::App& sub, CommonOptions& o);
// --max-image-pixels for commands that read images (refused from the header when larger).
void add_image_limit_option(CLI::App& sub, int64_t& max_pixels);
// --min-overlap and --tile-batch of the commands that run a flow model in tiles (flow, flow-eval).
void add_flow_tiling_options(CLI::App& sub, tasks::FlowOptions& o);
// A number in [lo, hi] that is finite: CLI::Range lets "nan" through (every comparison is false).
CLI::Validator finite_range(double lo, double hi);
Precision precision(const CommonOptions& o);
void apply_precision(nn::Module& model, const CommonOptions& o);

}  // namespace perceiver::cli
