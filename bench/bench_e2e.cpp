// End-to-end timing of one model on given weights and inputs: the perceiver.cpp side of
// bench/torch_compare.py (which runs PyTorch on the same folder and inputs and compares).
//
//   bench_e2e --model DIR --save-init OUT.safetensors        write the seeded initial weights, exit
//   bench_e2e --model DIR --inputs IN.safetensors [--mode infer|train] [--threads T]
//             [--warmup W] [--iters N] [--outputs OUT.safetensors] [--precision f32|bf16] [--profile]
//
// DIR/config.json is a Hugging Face Perceiver IO config ("model_type": "perceiver") or one of our
// run configs ({"model": {"type": ...}}); DIR/model.safetensors holds the weights for timed runs.
// Inputs: HF kind by the names `perceiver run` reads (+ "labels" for the task loss); classifier
// kind "images" (B, H, W) or (B, M), + "labels" (B). train = forward, loss, backward, AdamW step
// (lr 1e-4, no weight decay). Prints one JSON line with the timings and peak RSS.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <cstring>
#include <mutex>
#include <numeric>

#include "machine_peak.h"
#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/core/allocator.h"
#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/core/parallel.h"
#include "perceiver/core/profiler.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/models/image_classifier.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/models/registry.h"
#include "perceiver/optim/optimizer.h"
#include "perceiver/train/data_parallel.h"

namespace {

using namespace perceiver;
using models::TensorMap;
using Clock = std::chrono::steady_clock;

// One models::Model for both kinds (a run-config classifier or any model folder); classifier
// inputs arrive as "images" (torch_compare.py's name) and go through the image path the trainer
// uses (ImageClassifier::forward).
struct Runner {
  std::unique_ptr<models::Model> model;
  models::ImageClassifier* classifier = nullptr;

  Tensor logits(const TensorMap& in) {
    if (classifier) return classifier->forward(in.at("images"));
    TensorMap out = model->forward(in);
    check(out.size() == 1, "[bench_e2e] expected one logits tensor, got ", out.size());
    return out.begin()->second;
  }
  Tensor loss(const Tensor& logits, const TensorMap& in) { return model->loss({{"logits", logits}}, in); }
};

Runner build(const std::string& dir, bool load_weights) {
  const std::string cfg_path = dir + "/config.json";
  const nlohmann::json j = read_json_file(cfg_path, "hf_config");
  Runner r;
  if (j.is_object() && j.contains("model")) {
    std::unique_ptr<models::ImageClassifier> clf =
        models::make_image_classifier(models::normalize_image_classifier_config(j.at("model")), 0);
    r.classifier = clf.get();
    r.model = std::move(clf);
    if (load_weights) {
      const std::string w = dir + "/model.safetensors";
      r.model->load_state_dict(io::load_safetensors(w).tensors, w);
    }
  } else if (load_weights) {
    r.model = io::load_model_folder(dir);
  } else {
    r.model = models::create_model(j, cfg_path, 0);
  }
  return r;
}

// The batch row where a slice (train::forward_backward) starts: its tensors are views of the batch's.
int64_t first_row(const TensorMap& part, const TensorMap& batch) {
  for (const auto& [name, t] : part) {
    const Tensor& whole = batch.at(name);
    if (t.shape().empty() || t.shape() == whole.shape()) continue;
    const int64_t row_bytes = static_cast<int64_t>(whole.nbytes()) / whole.dim(0);
    return (static_cast<const char*>(t.raw_data()) - static_cast<const char*>(whole.raw_data())) / row_bytes;
  }
  return 0;
}

// The slices' logits (first row, logits) in batch order, as one tensor.
Tensor stack_rows(std::vector<std::pair<int64_t, Tensor>> parts) {
  std::sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  if (parts.size() == 1) return parts[0].second;
  Shape shape = parts[0].second.shape();
  shape[0] = 0;
  for (const auto& [first, t] : parts) shape[0] += t.dim(0);
  Tensor out = Tensor::empty(shape, parts[0].second.dtype());
  char* dst = static_cast<char*>(out.raw_data());
  for (const auto& [first, t] : parts) {
    const Tensor& c = t;  // tensors are dense
    std::memcpy(dst, c.raw_data(), c.nbytes());
    dst += c.nbytes();
  }
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Live tensor memory over the timed iterations (the caching allocator's peak of bytes handed to
// tensors, not RSS), split into weights (+ buffers), gradients, optimizer moments, the inputs, and
// the rest: the activations saved for backward plus temporaries at the peak (MiB); the bf16
// copies of mixed-precision weights (ops::bf16_copy_of, kept with the weights) apart. In training,
// also "saved_for_backward_mib": the live tensors when backward starts (the forward's loss is
// computed) less weights, moments and inputs, i.e. what the tape holds for backward (+ logits),
// the quantity PyTorch's saved_tensors_hooks count in bench/torch_compare.py; with batch slices,
// the most held when any slice's forward ended (the other slices' tensors included).
nlohmann::json memory_breakdown(models::Model& model, const optim::Optimizer* opt, const TensorMap& inputs,
                                size_t live_at_backward) {
  auto mib = [](double bytes) { return bytes / 1048576.0; };
  double weights = 0, grads = 0, moments = 0, in_bytes = 0, copies = 0;
  for (const auto& [name, t] : model.state_dict()) {
    weights += static_cast<double>(t.nbytes());
    // the remembered bf16 rounding of a mixed-precision weight lives as long as the weight
    if (t.dtype() == DType::kF32)
      if (const Tensor c = t.remembered_copy(DType::kBF16); c.defined()) copies += static_cast<double>(c.nbytes());
  }
  for (const auto& [name, p] : model.named_parameters())
    if (p.grad().defined()) grads += static_cast<double>(p.grad().nbytes());
  if (opt)
    for (const auto& [name, t] : opt->state_tensors()) moments += static_cast<double>(t.nbytes());
  for (const auto& [name, t] : inputs) in_bytes += static_cast<double>(t.nbytes());
  const double peak = static_cast<double>(memory_stats().peak_in_use);
  nlohmann::json out = {{"peak_tensors_mib", mib(peak)}, {"weights_mib", mib(weights)},
          {"weight_bf16_copies_mib", mib(copies)}, {"gradients_mib", mib(grads)},
          {"optimizer_mib", mib(moments)}, {"inputs_mib", mib(in_bytes)},
          {"activations_and_workspace_mib", mib(std::max(0.0, peak - weights - copies - grads - moments - in_bytes))}};
  if (live_at_backward > 0)  // gradients are dropped before each step's forward
    out["saved_for_backward_mib"] =
        mib(std::max(0.0, static_cast<double>(live_at_backward) - weights - copies - moments - in_bytes));
  return out;
}

// The per-op profile of `iters` steps of mean_ms each: per op (most time first) ms per step,
// share of the step, calls per step, GFLOP/s and % of this machine's peak (bf16 ops against the
// bf16 peak); the rest of the step (autograd bookkeeping, allocation, glue) as "(other)". Printed
// as a table on stderr and returned as JSON.
nlohmann::json profile_report(int iters, double mean_ms) {
  profiler::set_enabled(false);
  const bench::MachinePeak peak = bench::measure_machine_peak(num_threads());
  std::vector<std::pair<std::string, profiler::Entry>> rows;
  double profiled_ms = 0;
  for (const auto& [name, e] : profiler::snapshot()) {
    rows.emplace_back(name, e);
    profiled_ms += 1e3 * e.seconds / iters;
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  profiler::Entry other;
  other.seconds = std::max(0.0, (mean_ms - profiled_ms) * 1e-3 * iters);
  rows.emplace_back("(other: autograd, allocation, glue)", other);
  nlohmann::json out = nlohmann::json::array();
  std::fprintf(stderr, "%-36s %10s %7s %8s %9s %7s\n", "op", "ms/step", "share", "calls", "GFLOP/s", "% peak");
  for (const auto& [name, e] : rows) {
    const double step_ms = 1e3 * e.seconds / iters, gflops = e.seconds > 0 ? 1e-9 * e.flops / e.seconds : 0.0;
    const double peak_gflops = name.find("bf16") != std::string::npos ? peak.bf16_gflops : peak.f32_gflops;
    const double pct = e.flops > 0 && peak_gflops > 0 ? 100.0 * gflops / peak_gflops : 0.0;
    std::fprintf(stderr, "%-36s %10.3f %6.1f%% %8.1f %9.1f %6.1f%%\n", name.c_str(), step_ms, 100.0 * step_ms / mean_ms,
                 static_cast<double>(e.calls) / iters, gflops, pct);
    out.push_back({{"op", name}, {"ms_per_step", step_ms}, {"share", step_ms / mean_ms},
                   {"calls_per_step", static_cast<double>(e.calls) / iters}, {"gflops", gflops},
                   {"peak_percent", pct}});
  }
  std::fprintf(stderr, "step %.3f ms; peak here: fp32 %.0f GFLOP/s, bf16 %.0f GFLOP/s (%d threads)\n", mean_ms,
               peak.f32_gflops, peak.bf16_gflops, num_threads());
  return out;
}

int run(int argc, char** argv) {
  CLI::App app{"perceiver.cpp end-to-end benchmark (the C++ side of bench/torch_compare.py)"};
  std::string model, inputs, outputs, save_init, mode = "infer", precision = "f32";
  int threads = 0, warmup = 2, iters = 5;
  app.add_option("--model", model, "model folder (config.json [+ model.safetensors])")->required()->check(CLI::ExistingDirectory);
  app.add_option("--save-init", save_init, "write the seeded initial weights here and exit");
  app.add_option("--inputs", inputs, "input tensors (.safetensors)")->check(CLI::ExistingFile);
  app.add_option("--outputs", outputs, "write the first timed logits (and loss) here");
  app.add_option("--mode", mode, "infer or train")->check(CLI::IsMember({"infer", "train"}));
  app.add_option("--threads", threads, "threads (0: all)")->check(CLI::Range(0, 1024));
  app.add_option("--warmup", warmup, "untimed iterations")->check(CLI::Range(0, 1000000));
  app.add_option("--iters", iters, "timed iterations")->check(CLI::Range(1, 1000000));
  bool checkpointing = false;
  app.add_flag("--checkpointing", checkpointing, "train mode: activation checkpointing (recompute attention layers in backward)");
  app.add_option("--precision", precision, "f32, or bf16 (inference: bf16 weights; train: mixed precision)")
      ->check(CLI::IsMember({"f32", "bf16"}));
  std::string parallelism = "auto";
  app.add_option("--parallelism", parallelism, "train mode: auto, batch (each thread a slice of the batch) or "
                 "intra_op (all threads inside each op), as train.parallelism")
      ->check(CLI::IsMember({"auto", "batch", "intra_op"}));
  bool profile = false;
  app.add_flag("--profile", profile, "per-op profile of the timed iterations (time, share, GFLOP/s and % of the "
               "peak measured here, fp32 or bf16): a table on stderr, \"profile\" in the JSON line");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);

  if (!save_init.empty()) {
    Runner r = build(model, false);
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (auto& [name, t] : r.model->state_dict()) tensors.emplace_back(name, t);
    io::save_safetensors(save_init, tensors, {{"format", "pt"}});
    std::printf("{\"saved\": \"%s\", \"tensors\": %zu}\n", save_init.c_str(), tensors.size());
    return 0;
  }
  check(!inputs.empty(), "[bench_e2e] --inputs is required unless --save-init is given");
  Runner r = build(model, true);
  const TensorMap in = io::load_safetensors(inputs).tensors;
  if (r.classifier) check(in.count("images"), "[bench_e2e] ", inputs, ": expected an \"images\" tensor");
  if (mode == "train") check(in.count("labels") || !r.classifier, "[bench_e2e] ", inputs, ": train mode needs \"labels\"");
  const double rss_after_load = peak_rss_bytes() / 1048576.0;
  const bool train = mode == "train";
  r.model->train(train);
  if (precision == "bf16") {
    // inference: the Linear weights become bf16 (fp32 memory returned); training: mixed precision
    // (fp32 master weights, bf16 products, as train.precision "bf16")
    r.model->set_precision(Precision::kBF16, /*keep_f32_weights=*/train);
  }
  r.model->set_activation_checkpointing(checkpointing);
  std::unique_ptr<optim::Optimizer> opt;
  if (train) {
    optim::OptimizerOptions oo;
    oo.weight_decay = 0.0f;
    opt = optim::make_optimizer("adamw", r.model->named_parameters(), oo);
  }

  const int slices = train ? train::batch_slices(parallelism, num_threads(), in.begin()->second.dim(0), *r.model) : 1;
  Tensor first_logits;
  float first_loss = 0.0f;
  size_t live_at_backward = 0;  // most live tensor bytes when a forward ended (timed iterations)
  std::vector<double> ms;
  for (int it = 0; it < warmup + iters; ++it) {
    if (profile && it == warmup) profiler::set_enabled(true);  // the timed iterations only
    if (it == warmup) reset_peak_memory();  // the tensors' peak over the timed iterations
    const auto t0 = Clock::now();
    Tensor logits;
    if (train) {
      // forward, loss and backward as the trainer runs them (whole batch, or a slice per thread);
      // the slices' logits are put together for --outputs
      opt->zero_grad();
      Rng rng(0, 1);
      std::mutex mu;
      std::vector<std::pair<int64_t, Tensor>> parts;
      const train::StepLoss sl = train::forward_backward(
          in, slices, rng, [&](const TensorMap& part, Rng*, train::EvalResult*) {
            Tensor part_logits = r.logits(part);
            const int64_t first = first_row(part, in);
            Tensor part_loss = r.loss(part_logits, part);
            std::lock_guard<std::mutex> lock(mu);
            parts.emplace_back(first, part_logits.detach());
            if (it >= warmup) live_at_backward = std::max(live_at_backward, memory_stats().bytes_in_use);
            return part_loss;
          });
      if (it == 0) first_loss = sl.loss;  // loss of step 0 (before any update)
      logits = stack_rows(parts);
      opt->step(1e-4f);
    } else {
      autograd::NoGradGuard no_grad;
      logits = r.logits(in);
    }
    const double t = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (it >= warmup) ms.push_back(t);
    if (it == warmup) first_logits = logits.detach();
  }
  if (!outputs.empty()) {
    std::vector<std::pair<std::string, Tensor>> out{{"logits", first_logits}};
    if (train) out.emplace_back("loss", Tensor::scalar(first_loss));
    io::save_safetensors(outputs, out, {{"format", "pt"}});
  }
  nlohmann::json res = {{"mode", mode},
                        {"threads", num_threads()},
                        {"batch", first_logits.dim(0)},
                        {"warmup", warmup},
                        {"iters", iters},
                        {"median_ms", median(ms)},
                        {"min_ms", *std::min_element(ms.begin(), ms.end())},
                        {"mean_ms", std::accumulate(ms.begin(), ms.end(), 0.0) / ms.size()},
                        {"peak_rss_mib", peak_rss_bytes() / 1048576.0},
                        {"rss_after_load_mib", rss_after_load},
                        {"rss_end_mib", current_rss_bytes() / 1048576.0},
                        {"precision", precision},
                        {"checkpointing", checkpointing},
                        {"batch_slices", slices}};
  if (train) res["loss_first"] = first_loss;
  res["memory"] = memory_breakdown(*r.model, opt.get(), in, live_at_backward);
  if (profile) res["profile"] = profile_report(iters, std::accumulate(ms.begin(), ms.end(), 0.0) / ms.size());
  std::printf("%s\n", res.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_e2e: error: %s\n", e.what());
    return 1;
  }
}
