// The training loop for every task of run configs (train/task.h: image and audio classifiers,
// masked LM and sequence classification on text): seeded shuffling, augmentation and masking,
// optimizer + schedule + clipping, evaluation each epoch, metrics (JSON lines), atomic
// checkpoints, exact resume, --init fine-tuning, the exported model folder, and Ctrl-C handling
// (save, then stop cleanly).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "perceiver/models/image_classifier.h"
#include "perceiver/train/task.h"
#include "perceiver/train/train_config.h"

namespace perceiver::train {

struct TrainOptions {
  std::string out_dir = "runs/default";
  bool resume = false;       // continue from out_dir/checkpoint.safetensors
  bool force = false;        // start afresh even if out_dir already holds a checkpoint
  bool quiet = false;        // no progress output (tests)
  std::string init_dir;      // fine-tune: start from this model folder's weights (io::init_from_model_folder)
  // Data parallel across processes (mpiexec; train/distributed.h):
  int64_t bucket_bytes = int64_t(4) << 20;  // gradients summed in buckets of about this size
  bool overlap = true;          // start a bucket's sum while backward still runs (one slice per process)
  bool check_replicas = false;  // after every step, abort unless all processes hold the same bits
  // Embedding (the Python module): polled before every step; true stops the run as Ctrl-C does
  // (checkpoint saved, resumable). Neither callback may throw.
  std::function<bool()> stop_requested;
  // Receives every record written to metrics.jsonl ("train" every log_every steps, "eval" after
  // each epoch, "warning"), on the process that writes files.
  std::function<void(const nlohmann::json& record)> on_record;
};

struct TrainResult {
  int64_t steps = 0;
  bool interrupted = false;  // stopped by Ctrl-C or train.max_steps before the end
  EvalResult last_eval;      // the last evaluation (count 0 if none): after epoch last_eval_epoch
  int last_eval_epoch = 0;   // train.eval_every may leave later epochs unevaluated when a run stops early
  double seconds = 0;
  double train_samples_per_s = 0;
  bool diverged = false;  // the training loss rose above 10x its start (a warning was printed)
  std::vector<std::string> samples;  // files of OUT/samples (optical flow, autoencoding)
  // Several processes: seconds waiting for gradient sums after backward, and buckets started
  // during backward out of all buckets summed.
  double comm_exposed_s = 0;
  int64_t buckets_overlapped = 0, buckets_total = 0;
};

TrainResult run_training(const RunConfig& config, const TrainOptions& options);

// Installs the SIGINT/SIGTERM handler that asks the running loop to checkpoint and stop.
void install_interrupt_handler();
bool interrupt_requested();
int interrupt_signal();  // the signal that asked to stop (SIGINT/SIGTERM), 0 if none

}  // namespace perceiver::train
