// `perceiver train --config FILE [--out DIR] [--resume]`; under `mpiexec -n N` (or srun) the N
// processes train data-parallel (train/distributed.h).
#include <cstdio>

#include "commands.h"
#include "perceiver/core/allocator.h"
#include "perceiver/core/error.h"
#include "perceiver/dist/world.h"
#include "perceiver/train/trainer.h"

namespace perceiver::cli {
namespace {

struct TrainArgs {
  std::string config, out = "runs/default", init;
  std::vector<std::string> overrides;
  bool resume = false, quiet = false, force = false, no_overlap = false, check_replicas = false;
  double mpi_timeout = 300, bucket_mib = 4;
  CommonOptions common;
};

int run(const TrainArgs& a) {
  train::RunConfig cfg = train::load_run_config(a.config, a.overrides);
  if (a.common.threads > 0) cfg.train.threads = a.common.threads;
  apply_common_options(a.common);
  train::install_interrupt_handler();
  train::TrainOptions opt;
  opt.out_dir = a.out;
  opt.resume = a.resume;
  opt.quiet = a.quiet;
  opt.force = a.force;
  opt.init_dir = a.init;
  opt.bucket_bytes = static_cast<int64_t>(a.bucket_mib * 1048576.0);
  opt.overlap = !a.no_overlap;
  opt.check_replicas = a.check_replicas;
  train::TrainResult r = train::run_training(cfg, opt);
  if (dist::rank() != 0) return 0;  // rank 0 reports for the job
  char metric[128];
  if (r.last_eval.count == 0)
    std::snprintf(metric, sizeof(metric), "not evaluated yet (after no completed epoch, or none of train.eval_every's)");
  else if (r.last_eval.regression)
    std::snprintf(metric, sizeof(metric), "test mean squared error %.6g (epoch %d)", r.last_eval.loss, r.last_eval_epoch);
  else
    std::snprintf(metric, sizeof(metric), "test accuracy %.4f (epoch %d)", r.last_eval.accuracy(), r.last_eval_epoch);
  std::printf("%s after %lld steps in %.1fs (%.0f samples/s incl. evaluation); %s; peak RSS %.0f MiB\n",
              r.interrupted ? "stopped" : "finished", (long long)r.steps, r.seconds, r.train_samples_per_s, metric,
              peak_rss_bytes() / 1048576.0);
  if (dist::active())
    std::printf("%d processes: %.2fs waiting for gradient sums after backward (%.1f ms per step); %lld of %lld buckets "
                "started during backward\n",
                dist::size(), r.comm_exposed_s, r.steps ? 1000.0 * r.comm_exposed_s / static_cast<double>(r.steps) : 0.0,
                (long long)r.buckets_overlapped, (long long)r.buckets_total);
  if (!r.interrupted) std::printf("weights: %s/model.safetensors\n", a.out.c_str());
  if (!r.samples.empty())
    std::printf("samples: %zu files in %s/samples (held-out examples: inputs, ground truth, outputs)\n", r.samples.size(),
                a.out.c_str());
  if (r.diverged)
    std::printf("warning: training diverged (the loss rose above 10x its start; see %s/metrics.jsonl)\n", a.out.c_str());
  return r.interrupted && train::interrupt_requested() ? 128 + train::interrupt_signal() : 0;
}

}  // namespace

Runner add_train_command(CLI::App& sub) {
  auto a = std::make_shared<TrainArgs>();
  sub.add_option("--config", a->config, "run config (JSON: model, train, data)")->required()->check(CLI::ExistingFile);
  sub.add_option("--out", a->out, "output directory: checkpoint, metrics.jsonl, model.safetensors");
  sub.add_flag("--resume", a->resume, "continue from OUT/checkpoint.safetensors");
  sub.add_flag("--force", a->force, "start afresh even if OUT already holds a run (its files are replaced)");
  sub.add_flag("--quiet", a->quiet, "no progress output");
  sub.add_option("--init", a->init, "fine-tune: start from this model folder's weights (e.g. a run's export/): tensors "
                 "of the same name and shape are loaded, the others (a new head) re-initialised and named")
      ->check(CLI::ExistingDirectory);
  sub.add_option("--set", a->overrides, "override a config value, KEY=VALUE (repeatable): e.g. --set "
                 "data.test_group=george --set train.epochs=12 --set data.dir=/path; VALUE is JSON or a string");
  sub.add_option("--mpi-timeout", a->mpi_timeout, "several processes (mpiexec): seconds a process waits for the "
                 "others before declaring the job stuck and ending it (default 300)")->check(CLI::PositiveNumber);
  sub.add_option("--bucket-mib", a->bucket_mib, "several processes: gradients are summed in buckets of about this "
                 "many MiB (default 4)")->check(CLI::Range(0.001, 4096.0));
  sub.add_flag("--no-overlap", a->no_overlap, "several processes: sum the gradients only after backward (to measure "
               "the overlap)");
  sub.add_flag("--check-replicas", a->check_replicas, "several processes: after every step, end the job unless "
               "every process holds the same parameters and optimizer state, bit for bit");
  add_common_options(sub, a->common);
  return [a]() {
    dist::init(nullptr, nullptr);
    dist::set_timeout(a->mpi_timeout);
    try {
      const int rc = run(*a);
      dist::finalize();
      return rc;
    } catch (const std::exception& e) {
      // One process failing must end them all, not leave the others waiting.
      if (dist::active()) dist::abort_job(e.what());
      throw;
    }
  };
}

}  // namespace perceiver::cli
