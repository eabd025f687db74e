// `perceiver train --config FILE [--out DIR] [--resume]`
#include <cstdio>

#include "commands.h"
#include "perceiver/core/allocator.h"
#include "perceiver/train/trainer.h"

namespace perceiver::cli {

Runner add_train_command(CLI::App& sub) {
  struct Args {
    std::string config, out = "runs/default", init;
    std::vector<std::string> overrides;
    bool resume = false, quiet = false, force = false;
    CommonOptions common;
  };
  auto a = std::make_shared<Args>();
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
  add_common_options(sub, a->common);
  return [a]() {
    train::RunConfig cfg = train::load_run_config(a->config, a->overrides);
    if (a->common.threads > 0) cfg.train.threads = a->common.threads;
    apply_common_options(a->common);
    train::install_interrupt_handler();
    train::TrainOptions opt;
    opt.out_dir = a->out;
    opt.resume = a->resume;
    opt.quiet = a->quiet;
    opt.force = a->force;
    opt.init_dir = a->init;
    train::TrainResult r = train::run_training(cfg, opt);
    char metric[96];
    if (r.last_eval.regression) std::snprintf(metric, sizeof(metric), "test mean squared error %.6g", r.last_eval.loss);
    else std::snprintf(metric, sizeof(metric), "test accuracy %.4f", r.last_eval.accuracy());
    std::printf("%s after %lld steps in %.1fs (%.0f samples/s incl. evaluation); %s; peak RSS %.0f MiB\n",
                r.interrupted ? "stopped" : "finished", (long long)r.steps, r.seconds, r.train_samples_per_s, metric,
                peak_rss_bytes() / 1048576.0);
    if (!r.interrupted) std::printf("weights: %s/model.safetensors\n", a->out.c_str());
    if (r.diverged)
      std::printf("warning: training diverged (the loss rose above 10x its start; see %s/metrics.jsonl)\n", a->out.c_str());
    return r.interrupted && train::interrupt_requested() ? 128 + train::interrupt_signal() : 0;
  };
}

}  // namespace perceiver::cli
