// perceiver: command-line entry point. Parses flags with CLI11 and dispatches to a subcommand;
// any perceiver::Error becomes a one-line "perceiver: error: ..." and exit code 1.
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "commands.h"
#include "perceiver/core/allocator.h"
#include "perceiver/core/error.h"
#include "perceiver/core/gemm_provider.h"
#include "perceiver/core/parallel.h"
#include "perceiver/data/image_codec.h"

namespace perceiver::cli {

void add_common_options(CLI::App& sub, CommonOptions& o) {
  sub.add_option("--threads", o.threads, "worker threads (0 = all cores)")->check(CLI::Range(0, 1024));
  sub.add_option("--gemm", o.gemm, "GEMM provider: onednn, openblas or naive (default onednn)");
  sub.add_flag("--skip-memory-check", o.skip_memory_check,
               "do not refuse models and runs whose memory estimate exceeds this machine's memory");
}

void add_precision_option(CLI::App& sub, CommonOptions& o) {
  sub.add_option("--precision", o.precision,
                 "f32, or bf16: linear layers and attention in bfloat16 with fp32 accumulation "
                 "(AVX512-BF16; about 2x faster, ~1% relative error)")
      ->check(CLI::IsMember({"f32", "fp32", "bf16", "bfloat16"}));
}

void add_image_limit_option(CLI::App& sub, int64_t& max_pixels) {
  sub.add_option("--max-image-pixels", max_pixels,
                 "refuse images with more pixels than this, from the file header (default 100000000)")
      ->check(CLI::Range(int64_t{1}, data::kMaxImageSide * data::kMaxImageSide));
}

CLI::Validator finite_range(double lo, double hi) {
  std::ostringstream desc;
  desc << "FINITE in [" << lo << " - " << hi << "]";
  return CLI::Validator(
      [lo, hi](std::string& text) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(text.c_str(), &end);
        std::ostringstream why;
        why << "expected a finite number in [" << lo << ", " << hi << "], got " << text;
        if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(v) || v < lo ||
            v > hi)
          return why.str();
        return {};
      },
      desc.str());
}

Precision precision(const CommonOptions& o) { return parse_precision(o.precision); }

void apply_precision(nn::Module& model, const CommonOptions& o) {
  const Precision p = precision(o);
  if (p == Precision::kF32) return;
  model.set_precision(p, /*keep_f32_weights=*/false);  // each Linear returns its fp32 block
}

void apply_common_options(const CommonOptions& o) {
  if (!o.gemm.empty()) set_gemm_provider(parse_gemm_provider(o.gemm));
  if (o.threads > 0) set_num_threads(o.threads);
  if (o.skip_memory_check) set_memory_checks(false);
}

}  // namespace perceiver::cli

// libgomp reads its environment before main, so the wait policy is set by re-executing once.
// Passive waiting lets a thread that finishes its share of a parallel region sleep instead of
// spinning; on a busy 2-vCPU host spinning halved training speed (docs/BENCHMARKS.md).
static void ensure_passive_omp_wait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then run with the default policy
}

int main(int argc, char** argv) {
  ensure_passive_omp_wait(argv);
  CLI::App app{"perceiver.cpp: train and run Perceiver models without Python"};
  app.set_version_flag("--version", "perceiver.cpp 0.1.0");
  // Flag errors as one line, like every other error of the program.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("perceiver: error: ") + e.what() + " (see --help)\n";
  });
  // One row per subcommand: name, one-line help, the function that registers its flags.
  struct Command {
    const char* name;
    const char* help;
    perceiver::cli::Runner (*add)(CLI::App&);
  };
  const Command commands[] = {
      {"train", "train a model from a JSON config", perceiver::cli::add_train_command},
      {"eval", "test accuracy and confusion matrix of a checkpoint", perceiver::cli::add_eval_command},
      {"predict", "classify PNG/JPEG images with a checkpoint", perceiver::cli::add_predict_command},
      {"run", "run a Hugging Face Perceiver IO model folder on named input tensors", perceiver::cli::add_run_command},
      {"grad", "training loss and parameter gradients of a Hugging Face Perceiver IO model", perceiver::cli::add_grad_command},
      {"convert", "convert a PyTorch pytorch_model.bin to safetensors (no code from the file is run)", perceiver::cli::add_convert_command},
      {"fill-mask", "fill [MASK] bytes with a Hugging Face language Perceiver (PerceiverForMaskedLM)", perceiver::cli::add_fill_mask_command},
      {"tag", "label every token of a text with a byte-level tagger (PerceiverForTokenClassification)", perceiver::cli::add_tag_command},
      {"classify", "top-k labels of images with a Hugging Face image classification model folder", perceiver::cli::add_classify_command},
      {"flow", "optical flow between two frames of any size with a Hugging Face PerceiverForOpticalFlow folder", perceiver::cli::add_flow_command},
      {"flow-eval", "end-point error of an optical-flow model on folders of pairs with ground truth", perceiver::cli::add_flow_eval_command},
      {"flow-synth", "write FlyingChairs-style synthetic optical-flow pairs with exact ground truth", perceiver::cli::add_flow_synth_command},
      {"autoencode", "reconstruct video, audio and label with a Hugging Face multimodal Perceiver, decoding in chunks", perceiver::cli::add_autoencode_command},
      {"serve", "answer HTTP requests with a model folder (run, classify, fill-mask; batching, metrics)", perceiver::cli::add_serve_command},
      {"attention", "draw what the latents attend to: cross-attention maps over an image or a text (PNG)", perceiver::cli::add_attention_command},
  };
  std::vector<std::pair<CLI::App*, perceiver::cli::Runner>> subs;
  for (const Command& c : commands) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    subs.emplace_back(sub, c.add(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, runner] : subs)
      if (sub->parsed()) return runner();
    std::string names;
    for (const Command& c : commands) names += std::string(names.empty() ? "" : ", ") + c.name;
    std::fprintf(stderr, "perceiver: error: a subcommand is required: %s (see --help)\n", names.c_str());
    return 2;
  } catch (const perceiver::Error& e) {
    std::fprintf(stderr, "perceiver: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "perceiver: error: unexpected failure: %s\n", e.what());
    return 1;
  }
  return 2;
}
