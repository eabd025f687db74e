// Training loop (see trainer.h). Reproducibility: the epoch permutation is a function of
// (seed, epoch) and each step's augmentation/dropout stream a function of (seed, step), so a
// resumed run replays exactly what an uninterrupted run would have done.
#include "perceiver/train/trainer.h"

#include <atomic>
#include <cmath>
#include <chrono>
#include <pthread.h>
#include <signal.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <thread>

#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/core/allocator.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/core/parallel.h"
#include "perceiver/io/atomic_file.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/ops/reduce.h"
#include "perceiver/optim/clip.h"
#include "perceiver/optim/schedule.h"
#include "perceiver/train/checkpoint.h"
#include "perceiver/train/data_parallel.h"
#include "perceiver/train/distributed.h"
#include "perceiver/train/plot.h"
#include "perceiver/train/progress.h"

namespace perceiver::train {
namespace {

constexpr int64_t kSampleCount = 4;  // held-out examples written to OUT/samples at the end

std::atomic<int> g_signal{0};

// A training loss this many times its first value is reported as divergence.
constexpr double kDivergenceFactor = 10.0;

void on_signal(int sig) {
  g_signal.store(sig);       // lock-free atomic store: async-signal-safe
  std::signal(sig, SIG_DFL);  // a second Ctrl-C (or SIGTERM) ends the process at once
}

// The parts of a run config that must not change when a run is resumed (everything that
// decides the sequence of updates); threads and parallelism (batch slices sum the same gradients
// in another order: a resumed run is bit-identical when both stay the same), logging, checkpoint
// cadence, max_steps, the evaluation batch and cadence, activation checkpointing (the same computation with
// less memory; bit-identical here, since chunked K/V only starts above 4,096 inputs) and the data
// location may change.
nlohmann::json resume_identity(const RunConfig& c) {
  nlohmann::json j = c.to_json();
  j.erase("model");  // compared on its own (run_training)
  for (const char* k : {"threads", "parallelism", "log_every", "checkpoint_every", "max_steps", "eval_batch_size",
                        "eval_every", "activation_checkpointing"})
    j["train"].erase(k);
  j["data"].erase("dir");
  j["data"].erase("audio_dir");  // a location, like dir
  j["data"].erase("streaming");  // reading the corpus in place or from memory trains identically
  return j;
}

// Keeps the metrics records of steps <= step (a crash after the last checkpoint leaves records
// that the resumed run will write again).
void truncate_metrics(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in.good()) return;
  std::string kept, line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      const nlohmann::json record = parse_json(line, path, "metrics");
      int64_t s = 0;
      if (record.is_object() && record.contains("step") && json_to_int(record.at("step"), 0, INT64_MAX, s) && s > step)
        continue;
    } catch (const Error&) {
      continue;  // a torn last line from a crash
    }
    kept += line + "\n";
  }
  io::write_file_atomic(path, kept);
}

// The parameters whose gradient holds NaN/Inf, nearest the loss first (reverse of the
// parameter order, which is roughly the order backward reaches them): at most three named.
std::string nonfinite_gradients(const std::vector<nn::NamedTensor>& params) {
  std::string names;
  int found = 0;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    const Tensor& g = it->second.grad();
    if (!g.defined()) continue;
    const ops::NonFinite r = ops::count_nonfinite(g);
    if (!r) continue;
    if (found++ < 3) names += (names.empty() ? "" : ", ") + it->first + " (" + r.describe() + ")";
  }
  return std::to_string(found) + " parameter" + (found == 1 ? "" : "s") + ", nearest the loss: " + names;
}

// The first parameter or optimizer-state tensor that holds NaN/Inf, "" when all are finite.
std::string first_nonfinite_state(const std::vector<nn::NamedTensor>& params, const optim::Optimizer& optimizer) {
  for (const auto& [name, t] : params)
    if (const ops::NonFinite r = ops::count_nonfinite(t)) return "parameter " + name + " holds " + r.describe();
  for (const auto& [name, t] : optimizer.state_tensors())
    if (const ops::NonFinite r = ops::count_nonfinite(t)) return "optimizer state " + name + " holds " + r.describe();
  return "";
}

// Size before allocation: weights, gradients and the two optimizer slots (AdamW and LAMB keep
// two moments; a third with train.ema_decay), a training batch's activations and the data must
// fit the machine's memory.
void check_memory_estimate(Task& task, const TrainConfig& tc) {
  if (!memory_checks_enabled()) return;
  const double copies = tc.ema_decay > 0.0f ? 5.0 : 4.0;
  const double params = copies * sizeof(float) * static_cast<double>(task.model().num_parameters());
  const double batch_size = static_cast<double>(
      std::min(std::max(tc.batch_size, tc.eval_batch_size), std::max(task.train_size(), task.test_size())));
  const double activations = batch_size * static_cast<double>(task.activation_bytes_per_example(tc.activation_checkpointing));
  const double data_bytes = static_cast<double>(task.data_bytes());
  const double total = params + activations + data_bytes;
  const double machine = static_cast<double>(machine_memory_bytes());
  if (total <= machine) return;
  throw_error("[train] this run needs about ", format_bytes(total), " of memory (parameters with gradients and "
              "optimizer state ", format_bytes(params), ", activations of a batch of ", batch_size, " ",
              format_bytes(activations), ", data ", format_bytes(data_bytes), "), more than this "
              "machine's ", format_bytes(machine), "; reduce the model or train.batch_size, enable "
              "train.activation_checkpointing, or pass --skip-memory-check");
}

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  Rng rng(seed, 0x5eed0000ULL + static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[rng.below(static_cast<uint32_t>(i + 1))]);
  return perm;
}

void append_metrics(const std::string& path, const nlohmann::json& record) {
  std::ofstream out(path, std::ios::app);
  check(out.good(), "[train] ", path, ": cannot open metrics file for appending");
  out << record.dump() << "\n";
}

}  // namespace

// SIGINT/SIGTERM are blocked in the calling thread before the worker threads exist (OpenMP's
// threads inherit the mask) and taken by one watcher thread with sigwait, so no thread running
// oneDNN or our kernels is interrupted asynchronously: a SIGINT landing in oneDNN work corrupted
// the heap in ~1-2% of interrupted runs. Threads that libraries started earlier (OpenBLAS's pool)
// keep the handler, which only sets the flag. A second signal ends the process at once.
void install_interrupt_handler() {
  g_signal.store(0);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set]() {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) return;
    g_signal.store(sig);
    if (sigwait(&set, &sig) != 0) return;
    std::signal(sig, SIG_DFL);
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    raise(sig);
  }).detach();
}

bool interrupt_requested() { return g_signal.load() != 0; }
int interrupt_signal() { return g_signal.load(); }

TrainResult run_training(const RunConfig& user_cfg, const TrainOptions& opt) {
  using Clock = std::chrono::steady_clock;
  const TrainConfig& tc = user_cfg.train;
  set_num_threads(tc.threads);
  // Data parallel across processes (train/distributed.h): rank 0 alone reads and writes files.
  const int rank = dist::rank(), ranks = dist::size();
  const bool writer = rank == 0;
  std::vector<std::string> stale;
  if (writer) {
    std::error_code ec;
    std::filesystem::create_directories(opt.out_dir, ec);
    check(!ec, "[train] cannot create output directory '", opt.out_dir, "': ", ec.message());
    stale = io::remove_stale_temp_files(opt.out_dir);
  }
  const std::string ckpt_path = opt.out_dir + "/checkpoint.safetensors";
  const std::string metrics_path = opt.out_dir + "/metrics.jsonl";
  // a metrics.jsonl record, also to the embedding program's callback (TrainOptions::on_record)
  const auto emit = [&](const nlohmann::json& record) {
    append_metrics(metrics_path, record);
    if (opt.on_record) opt.on_record(record);
  };
  Progress progress(opt.quiet || !writer);
  for (const std::string& name : stale)
    progress.message("removed " + opt.out_dir + "/" + name + ", a temporary file left by a writer that no longer runs");

  // The model and its data (train/task.h).
  Task task(user_cfg);
  // The run as built (a text classifier's hub config gains its classes' id2label): what
  // checkpoints and config.json store and what a resumed run must match.
  RunConfig cfg = user_cfg;
  cfg.model = task.model_config();
  models::Model& model = task.model();
  model.set_activation_checkpointing(tc.activation_checkpointing);
  // mixed precision: bf16 products, fp32 master weights (Module::set_precision)
  if (tc.precision == "bf16") model.set_precision(Precision::kBF16, /*keep_f32_weights=*/true);
  check_memory_estimate(task, tc);
  std::vector<nn::NamedTensor> params = model.named_parameters();
  optim::OptimizerOptions oo;
  oo.beta1 = tc.beta1;
  oo.beta2 = tc.beta2;
  oo.eps = tc.eps;
  oo.weight_decay = tc.weight_decay;
  oo.ema_decay = tc.ema_decay;
  std::unique_ptr<optim::Optimizer> optimizer = optim::make_optimizer(tc.optimizer, params, oo);

  const int64_t n = task.train_size();
  if (ranks > 1) {
    check(tc.batch_size >= ranks, "[train] train.batch_size ", tc.batch_size, " is the global batch, split across ",
          ranks, " processes: it must be at least the number of processes");
    check(!has_batch_statistics(model), "[train] this model normalises with batch statistics (batch norm), which differ between the "
          "processes' shares of the batch; data-parallel training across processes would change the model: run it in "
          "one process");
  }
  const int64_t spe = (n + tc.batch_size - 1) / tc.batch_size;
  const int64_t total = spe * tc.epochs;
  optim::ScheduleConfig sched;
  sched.kind = tc.schedule;
  sched.base_lr = tc.lr;
  sched.warmup_steps = std::min(tc.warmup_steps, total);
  sched.total_steps = total;
  sched.final_lr_fraction = tc.final_lr_fraction;
  sched.constant_fraction = tc.constant_fraction;
  optim::validate(sched);

  int64_t step = 0;
  check(!(opt.resume && !opt.init_dir.empty()), "[train] --init starts a run from a model folder; a resumed run "
        "continues from its checkpoint: give one of --init and --resume");
  if (opt.resume && writer) {
    Checkpoint ckpt = read_checkpoint(ckpt_path);
    // both as read back from a file: the run's model config in the form the checkpoint's was parsed
    // to (a text classifier's id2label, added by the task, replaces num_labels there)
    check(ckpt.config.model == parse_run_config(cfg.to_json()).model, "[train] ", ckpt_path,
          ": the checkpoint's model config differs from the run's; resume with the same config");
    const nlohmann::json saved = resume_identity(ckpt.config), now = resume_identity(cfg);
    if (saved != now) {
      std::string keys;
      for (const char* sec : {"train", "data"})
        for (auto it = now[sec].begin(); it != now[sec].end(); ++it)
          if (!saved[sec].contains(it.key()) || saved[sec][it.key()] != it.value())
            keys += std::string(keys.empty() ? "" : ", ") + sec + "." + it.key() + " (checkpoint " +
                    (saved[sec].contains(it.key()) ? saved[sec][it.key()].dump() : "absent") + ", now " +
                    it.value().dump() + ")";
      throw_error("[train] ", ckpt_path, ": resuming needs the same training settings; changed: ", keys);
    }
    model.load_state_dict(ckpt.params, ckpt_path);
    optimizer->load_state(ckpt.optimizer_state, ckpt.step);
    if (const std::string bad = first_nonfinite_state(params, *optimizer); !bad.empty())
      throw_error("[train] ", ckpt_path, ": cannot resume: the checkpoint's ", bad);
    step = ckpt.step;
    truncate_metrics(metrics_path, step);
    check(step <= total, "[train] ", ckpt_path, ": checkpoint step ", step, " is past the end of training (",
          total, " steps)");
    progress.message("resumed from " + ckpt_path + " at step " + std::to_string(step));
  } else if (writer) {
    check(opt.force || !std::filesystem::exists(ckpt_path), "[train] ", opt.out_dir,
          " already holds a run (checkpoint.safetensors); continue it with --resume, or start over with --force");
    std::remove(metrics_path.c_str());
    if (!opt.init_dir.empty()) {
      for (const std::string& name : io::init_from_model_folder(model, opt.init_dir))
        progress.message("init: " + (name.find(" unused") != std::string::npos ? name : "re-initialised " + name));
      progress.message("init: weights from " + opt.init_dir);
    }
  }
  // Every rank starts from rank 0's weights, optimizer state and step.
  broadcast_training_state(model, *optimizer, step);
  if (writer) io::write_file_atomic(opt.out_dir + "/config.json", cfg.to_json().dump(2) + "\n");
  if (writer && !task.split().is_null())  // the held-out documents, for baselines on the same split
    io::write_file_atomic(opt.out_dir + "/data_split.json", task.split().dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  // Slices per step and process, decided once per batch size (a run has at most two: full and
  // the epoch's last), not per step: the rule visits the model's parameters and buffers. Every
  // process takes rank 0's decision (the parts of the batch must be cut alike everywhere).
  std::map<int64_t, int> slices_for_batch;
  auto slices_for = [&](int64_t b) {
    auto it = slices_for_batch.find(b);
    if (it == slices_for_batch.end()) {
      int slices = batch_slices(tc.parallelism, num_threads(), b / ranks, model);
      dist::broadcast(&slices, sizeof(slices), 0, "the slice count");
      it = slices_for_batch.emplace(b, slices).first;
    }
    return it->second;
  };
  // Across processes: the gradient sums (buffers as large as the gradients: only when needed).
  std::unique_ptr<GradientReducer> reducer;
  if (ranks > 1) reducer = std::make_unique<GradientReducer>(params, opt.bucket_bytes);
  progress.message("model: " + std::to_string(model.num_parameters()) + " parameters; " +
                   std::to_string(n) + " training " + task.example_word() + ", " + std::to_string(task.test_size()) +
                   " test " + task.example_word() + "; " + std::to_string(total) + " steps of batch " +
                   std::to_string(tc.batch_size) + "; " +
                   (ranks > 1 ? std::to_string(ranks) + " processes x " : std::string()) +
                   std::to_string(num_threads()) + " threads" +
                   (slices_for(std::min(tc.batch_size, n)) > 1
                        ? " (each a slice of the batch)" : "") +
                   (reducer ? "; gradients summed in " + std::to_string(reducer->num_buckets()) + " buckets" : ""));

  TrainResult result;
  double initial_loss = -1;  // the first step's loss in this process (divergence reference)
  const auto t_start = Clock::now();
  auto t_window = t_start;
  int64_t window_samples = 0, window_correct = 0, window_predictions = 0, run_samples = 0;
  double window_loss = 0;
  int64_t window_steps = 0;
  std::vector<int64_t> perm;
  int64_t perm_epoch = -1;
  while (step < total) {
    // Ctrl-C on any process stops every process at the same step.
    std::vector<int64_t> stop_flag = {interrupt_requested() || (opt.stop_requested && opt.stop_requested()) ? 1 : 0};
    dist::allreduce_max(stop_flag, "the stop flag");
    if (stop_flag[0] != 0 || (tc.max_steps > 0 && step >= tc.max_steps)) {
      if (writer) save_checkpoint(ckpt_path, model, optimizer.get(), step, cfg);
      progress.message(std::string(stop_flag[0] != 0 ? "interrupted" : "stopped at max_steps") +
                       ": checkpoint saved to " + ckpt_path + " at step " + std::to_string(step) +
                       " (continue with --resume)");
      result.interrupted = true;
      break;
    }
    const int64_t epoch = step / spe, in_epoch = step % spe;
    if (epoch != perm_epoch) {
      perm = epoch_permutation(n, tc.seed, epoch);
      perm_epoch = epoch;
    }
    const int64_t first = in_epoch * tc.batch_size;
    const int64_t b = std::min(tc.batch_size, n - first);
    Rng step_rng(tc.seed, 0x57e90000ULL + static_cast<uint64_t>(step));

    // Batch (gather, augmentation or masking), forward, loss, backward, clip, update.
    const models::TensorMap batch =
        task.train_batch(perm, first, b, step_rng, static_cast<double>(step) / static_cast<double>(total));
    model.train(true);
    optimizer->zero_grad();
    const int slices = slices_for(b);
    if (reducer) reducer->begin_step(opt.overlap && slices == 1 && !tc.activation_checkpointing);
    StepLoss step_loss = forward_backward(
        batch, slices, step_rng,
        [&](const models::TensorMap& part, Rng* rng, EvalResult* stats) {
          return task.loss(part, tc.label_smoothing, rng, stats);
        },
        rank, ranks);
    if (reducer) {
      reducer->finish_step();  // every rank now holds the whole batch's gradients
      result.comm_exposed_s += reducer->exposed_seconds();
      result.buckets_overlapped += reducer->buckets_overlapped();
      result.buckets_total += reducer->num_buckets();
      // the whole batch's loss and predictions, summed in rank order (the same on every rank)
      std::vector<double> sums = {step_loss.loss, static_cast<double>(step_loss.stats.correct),
                                  static_cast<double>(step_loss.stats.count), step_loss.stats.regression ? 1.0 : 0.0};
      dist::allreduce_sum_ordered(sums, "the step's loss");
      step_loss.loss = static_cast<float>(sums[0]);
      step_loss.stats.correct = static_cast<int64_t>(sums[1]);
      step_loss.stats.count = static_cast<int64_t>(sums[2]);
      step_loss.stats.regression = sums[3] > 0;  // a rank whose parts were empty has no stats of its own
    }
    const float loss_value = step_loss.loss;
    const EvalResult& batch_stats = step_loss.stats;
    const std::string intact = "; the weights were not updated and the last checkpoint (" + ckpt_path +
                               ") is intact; lower train.lr or enable train.grad_clip";
    if (!std::isfinite(loss_value))
      throw_error("[train] step ", step, ": the loss became non-finite (", loss_value, ")", intact);
    // A non-finite gradient must never reach the weights (nor, through them, a checkpoint).
    const float gnorm = tc.grad_clip > 0 ? optim::clip_grad_norm(params, tc.grad_clip) : optim::grad_norm(params);
    if (!std::isfinite(gnorm))
      throw_error("[train] step ", step, ": the gradient became non-finite in ", nonfinite_gradients(params), intact);
    const float lr = optim::learning_rate(sched, step);
    optimizer->step(lr);
    optimizer->update_ema();  // with train.ema_decay
    // A finite gradient can still overflow the update (e.g. AdamW's squared-gradient average):
    // stop before such state reaches a checkpoint.
    if (const std::string bad = first_nonfinite_state(params, *optimizer); !bad.empty())
      throw_error("[train] step ", step, ": the update overflowed: ", bad, "; training stops here and the "
                  "last checkpoint (", ckpt_path, ") is intact; lower train.lr or enable train.grad_clip");
    ++step;
    if (opt.check_replicas) check_replicas_identical(model, *optimizer, step);
    if (initial_loss < 0) initial_loss = loss_value;

    window_loss += loss_value;
    window_steps += 1;
    window_correct += batch_stats.correct;
    window_predictions += batch_stats.count;
    window_samples += b;
    run_samples += b;
    const bool epoch_end = step % spe == 0;
    // the test set after every eval_every-th epoch and after the last
    const bool eval_now = epoch_end && ((step / spe) % tc.eval_every == 0 || step == total);
    const bool log_now = step % tc.log_every == 0 || epoch_end;
    const auto now = Clock::now();
    const double window_s = std::chrono::duration<double>(now - t_window).count();
    const double run_s = std::chrono::duration<double>(now - t_start).count();
    ProgressState ps;
    ps.epoch = static_cast<int>(epoch + 1);
    ps.epochs = tc.epochs;
    ps.step = step;
    ps.steps_per_epoch = spe;
    ps.total_steps = total;
    ps.loss = window_loss / window_steps;
    ps.accuracy = batch_stats.regression ? -1.0
                  : window_predictions ? static_cast<double>(window_correct) / window_predictions : 0.0;
    ps.lr = lr;
    ps.samples_per_s = window_s > 0 ? window_samples / window_s : 0;
    ps.eta_s = run_samples > 0 ? run_s / run_samples * static_cast<double>((total - step) * tc.batch_size) : 0;
    if (progress.is_tty() || log_now) progress.update(ps, log_now);
    if (log_now) {
      nlohmann::json train_record = {{"type", "train"}, {"epoch", epoch + 1}, {"step", step},
                                     {"loss", ps.loss}, {"accuracy", ps.accuracy}, {"lr", lr},
                                     {"samples_per_s", ps.samples_per_s}, {"elapsed_s", run_s}};
      if (ps.accuracy < 0) train_record.erase("accuracy");  // regression
      if (writer) emit(train_record);
      if (!result.diverged && ps.loss > kDivergenceFactor * initial_loss && initial_loss > 0) {
        result.diverged = true;
        char line[320];
        std::snprintf(line, sizeof(line), "warning: the training loss (%.4g at step %lld) is more than %.0fx its start "
                      "(%.4g): training is diverging; lower train.lr or enable train.grad_clip",
                      ps.loss, (long long)step, kDivergenceFactor, initial_loss);
        progress.message(line);
        if (writer) emit({{"type", "warning"}, {"what", "divergence"}, {"step", step},
                                      {"loss", ps.loss}, {"initial_loss", initial_loss}});
      }
      window_loss = 0;
      window_steps = 0;
      window_correct = window_predictions = window_samples = 0;
      t_window = now;
    }
    if (eval_now) {
      model.train(false);
      optimizer->swap_ema();  // evaluate the averaged weights (train.ema_decay), then swap back
      const auto t_eval = Clock::now();
      result.last_eval = evaluate_distributed(task, tc.eval_batch_size);
      result.last_eval_epoch = static_cast<int>(epoch + 1);
      const double eval_s = std::chrono::duration<double>(Clock::now() - t_eval).count();
      optimizer->swap_ema();
      const bool mlm = task.kind() == Task::Kind::kMaskedLM;
      const EvalResult& e = result.last_eval;
      char line[320];
      const bool flow = task.kind() == Task::Kind::kFlow;
      if (e.regression)
        std::snprintf(line, sizeof(line), "epoch %lld/%d: test mean squared error %.6g (%lld examples, %.1fs); elapsed %s",
                      (long long)(epoch + 1), tc.epochs, e.loss, (long long)e.count, eval_s, format_duration(run_s).c_str());
      else if (task.kind() == Task::Kind::kAutoencoder)
        std::snprintf(line, sizeof(line), "epoch %lld/%d: test video PSNR %.2f dB (zeros %.2f), audio PSNR %.2f dB (zeros "
                      "%.2f), label accuracy %.4f (%lld clips, %.1fs); elapsed %s", (long long)(epoch + 1), tc.epochs,
                      data::psnr(e.mean_squared_error("video"), 1.0), data::psnr(e.mean_squared_error("video_zero"), 1.0),
                      data::psnr(e.mean_squared_error("audio"), 2.0), data::psnr(e.mean_squared_error("audio_zero"), 2.0),
                      e.accuracy(), (long long)e.count, eval_s, format_duration(run_s).c_str());
      else if (flow)
        std::snprintf(line, sizeof(line), "epoch %lld/%d: test end-point error %.4f px (zero flow %.4f), %.2f%% of pixels "
                      "under 1 px, %.2f%% under 3 px (%lld pairs, %.1fs); elapsed %s", (long long)(epoch + 1), tc.epochs,
                      e.loss, e.zero_flow_epe(),
                      100.0 * static_cast<double>(e.correct_strict) / static_cast<double>(std::max<int64_t>(1, e.count)),
                      100.0 * e.accuracy(), (long long)task.test_size(), eval_s, format_duration(run_s).c_str());
      else
        std::snprintf(line, sizeof(line), "epoch %lld/%d: test %s %.4f, test loss %.4f%s (%lld %s, %.1fs); elapsed %s",
                      (long long)(epoch + 1), tc.epochs, task.accuracy_name(), e.accuracy(), e.loss,
                      mlm ? (", " + std::to_string(e.bits_per_prediction()).substr(0, 6) + " bits per byte").c_str() : "",
                      (long long)e.count, task.prediction_word(), eval_s, format_duration(run_s).c_str());
      progress.message(line);
      nlohmann::json record = {{"type", "eval"}, {"epoch", epoch + 1}, {"step", step},
                               {"test_accuracy", result.last_eval.accuracy()}, {"test_loss", result.last_eval.loss},
                               {"test_predictions", result.last_eval.count}, {"elapsed_s", run_s},
                               {"peak_rss_mb", peak_rss_bytes() / 1048576.0}};
      if (mlm) record["test_bits_per_byte"] = result.last_eval.bits_per_prediction();
      if (task.kind() == Task::Kind::kAutoencoder) {  // test_accuracy: the label's; test_loss: its cross-entropy
        record["test_video_psnr"] = data::psnr(e.mean_squared_error("video"), 1.0);
        record["test_audio_psnr"] = data::psnr(e.mean_squared_error("audio"), 2.0);
        record["test_video_mse"] = e.mean_squared_error("video");
        record["test_audio_mse"] = e.mean_squared_error("audio");
        record["test_video_psnr_zeros"] = data::psnr(e.mean_squared_error("video_zero"), 1.0);
        record["test_audio_psnr_zeros"] = data::psnr(e.mean_squared_error("audio_zero"), 2.0);
      }
      if (flow) {  // test_loss and test_accuracy: the end-point error and the share under 3 px
        record["test_epe"] = e.loss;
        record["test_epe_zero_flow"] = e.zero_flow_epe();
        record["test_under_1px"] = static_cast<double>(e.correct_strict) / static_cast<double>(std::max<int64_t>(1, e.count));
        record["test_under_3px"] = e.accuracy();
      }
      if (e.regression) {
        record.erase("test_accuracy");
        record["test_mse"] = e.loss;
      }
      if (writer) emit(record);
    }
    if (epoch_end) {
      if (writer) write_training_plot(metrics_path, opt.out_dir + "/plot.png");  // loss and accuracy so far
      if (writer) save_checkpoint(ckpt_path, model, optimizer.get(), step, cfg);
    } else if (writer && tc.checkpoint_every > 0 && step % tc.checkpoint_every == 0) {
      save_checkpoint(ckpt_path, model, optimizer.get(), step, cfg);
    }
  }
  result.steps = step;
  result.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  result.train_samples_per_s = result.seconds > 0 ? run_samples / result.seconds : 0;
  if (!result.interrupted) {
    // Final weights alone (the moving average with train.ema_decay), loadable by `perceiver
    // eval/predict` like a checkpoint, and the model as a hub-layout folder for `perceiver
    // run`/`classify` (and transformers, for HF classes).
    optimizer->swap_ema();
    if (writer) {
      save_checkpoint(opt.out_dir + "/model.safetensors", model, nullptr, step, cfg);
      io::save_model_folder(opt.out_dir + "/export", model);
      result.samples = task.write_samples(opt.out_dir + "/samples", kSampleCount);
    }
  }
  return result;
}

}  // namespace perceiver::train
