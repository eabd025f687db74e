// `perceiver eval --checkpoint C`: the run's test metrics (accuracy, the confusion matrix and per-class accuracy;
// masked-byte accuracy and bits per byte for a masked LM), through the run's task.
#include <cstdio>

#include <cmath>

#include "commands.h"
#include "finite_check.h"
#include "perceiver/train/task.h"
#include "perceiver/train/checkpoint.h"
#include "perceiver/train/trainer.h"

namespace perceiver::cli {

Runner add_eval_command(CLI::App& sub) {
  struct Args {
    std::string checkpoint, data_dir, samples;
    int64_t batch = 100, limit = 0, sample_count = 4;
    CommonOptions common;
  };
  auto a = std::make_shared<Args>();
  sub.add_option("--checkpoint", a->checkpoint, "checkpoint or model .safetensors")->required()->check(CLI::ExistingFile);
  sub.add_option("--data-dir", a->data_dir, "the data directory (default: the checkpoint's data.dir; same format and split)");
  sub.add_option("--batch-size", a->batch, "evaluation batch size")->check(CLI::Range(1, 1 << 20));
  sub.add_option("--limit", a->limit, "evaluate only the first N test examples (0 = all)")->check(CLI::NonNegativeNumber);
  sub.add_option("--samples", a->samples, "optical flow and autoencoding: also write pictures (and sounds) of the first "
                 "--sample-count test examples into this folder");
  sub.add_option("--sample-count", a->sample_count, "test examples for --samples (default 4)")->check(CLI::Range(1, 1000));
  add_common_options(sub, a->common);
  add_precision_option(sub, a->common);
  add_nonfinite_option(sub, a->common.allow_nonfinite);
  return [a]() {
    apply_common_options(a->common);
    const train::Checkpoint ckpt = train::read_checkpoint(a->checkpoint);
    train::RunConfig run = ckpt.config;  // the run's test data (format, split, input size, ...)
    if (!a->data_dir.empty()) run.data.dir = a->data_dir;
    run.data.test_limit = a->limit;
    // the run's task (train/task.h): its test set and its model, with the checkpoint's weights
    train::Task task(run, train::Task::Mode::kEvaluate);
    models::Model& model = task.model();
    model.load_state_dict(ckpt.params, a->checkpoint);
    model.train(false);
    check_finite_parameters(model, "eval", a->checkpoint, a->common.allow_nonfinite);
    apply_precision(model, a->common);
    check(a->samples.empty() || task.kind() == train::Task::Kind::kFlow || task.kind() == train::Task::Kind::kAutoencoder,
          "[eval] --samples applies to optical-flow and multimodal-autoencoding runs; ", a->checkpoint, " is neither");
    if (!a->samples.empty()) {
      const std::vector<std::string> files = task.write_samples(a->samples, a->sample_count);
      std::printf("samples: %zu files in %s\n", files.size(), a->samples.c_str());
    }
    const train::EvalResult r = task.evaluate(a->batch);
    check(a->common.allow_nonfinite || std::isfinite(r.loss), "[eval] ", a->checkpoint, ": the test loss is ", r.loss,
          " although the weights are finite (the computation overflowed); pass --allow-nonfinite to print it anyway");
    if (r.regression) {
      std::printf("test mean squared error: %.6g (%lld examples)\n", r.loss, (long long)r.count);
      return 0;
    }
    if (task.kind() == train::Task::Kind::kFlow) {
      const double n = static_cast<double>(std::max<int64_t>(1, r.count));
      std::printf("test end-point error: %.4f px (zero flow: %.4f px); %.2f%% of pixels under 1 px, %.2f%% under 3 px (%lld "
                  "pairs, %lld pixels)\n", r.loss, r.zero_flow_epe(), 100.0 * static_cast<double>(r.correct_strict) / n,
                  100.0 * r.accuracy(),
                  (long long)task.test_size(), (long long)r.count);
      return 0;
    }
    if (task.kind() == train::Task::Kind::kAutoencoder) {
      std::printf("test video PSNR %.2f dB (MSE %.6f; predicting a black canvas: %.2f dB), audio PSNR %.2f dB (MSE %.6f; "
                  "silence: %.2f dB), label accuracy %.4f (%lld/%lld clips, label masked at the input)\n",
                  data::psnr(r.mean_squared_error("video"), 1.0), r.mean_squared_error("video"),
                  data::psnr(r.mean_squared_error("video_zero"), 1.0), data::psnr(r.mean_squared_error("audio"), 2.0),
                  r.mean_squared_error("audio"), data::psnr(r.mean_squared_error("audio_zero"), 2.0), r.accuracy(),
                  (long long)r.correct, (long long)r.count);
      return 0;
    }
    if (task.kind() == train::Task::Kind::kMaskedLM) {
      std::printf("test masked-byte accuracy: %.4f (%lld/%lld), loss %.4f, %.4f bits per byte\n", r.accuracy(),
                  (long long)r.correct, (long long)r.count, r.loss, r.bits_per_prediction());
      return 0;
    }
    std::printf("test %s: %.4f (%lld/%lld %s), loss %.4f\n", task.accuracy_name(), r.accuracy(),
                (long long)r.correct, (long long)r.count, task.prediction_word(), r.loss);
    const int64_t k = r.num_classes;
    const std::vector<std::string>& names = task.class_names();
    std::printf("confusion matrix (rows: true class, columns: predicted):\n%14s", "");
    for (int64_t j = 0; j < k; ++j) std::printf(" %5lld", (long long)j);
    std::printf("\n");
    for (int64_t i = 0; i < k; ++i) {
      const std::string name = i < (int64_t)names.size() ? names[i] : std::to_string(i);
      std::printf("%2lld %-11s", (long long)i, name.substr(0, 11).c_str());
      for (int64_t j = 0; j < k; ++j) std::printf(" %5lld", (long long)r.confusion[i * k + j]);
      std::printf("\n");
    }
    // per class: the share of its test examples predicted right (the matrix row's diagonal)
    std::printf("per-class accuracy:\n");
    for (int64_t i = 0; i < k; ++i) {
      int64_t n = 0;
      for (int64_t j = 0; j < k; ++j) n += r.confusion[i * k + j];
      if (n == 0) continue;
      const std::string name = i < (int64_t)names.size() ? names[i] : std::to_string(i);
      std::printf("%2lld %-32s %.4f (%lld/%lld)\n", (long long)i, name.c_str(),
                  static_cast<double>(r.confusion[i * k + i]) / static_cast<double>(n),
                  (long long)r.confusion[i * k + i], (long long)n);
    }
    return 0;
  };
}

}  // namespace perceiver::cli
