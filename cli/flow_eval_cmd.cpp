// `perceiver flow-eval --model DIR PAIRS_DIR...`: end-point error of a PerceiverForOpticalFlow
// folder on FlyingChairs-layout folders of pairs with ground truth (NAME_img1.png, NAME_img2.png,
// NAME_flow.flo; unknown flow skipped), next to the zero-flow baseline: per folder the average
// end-point error over known pixels (pixel-weighted over all pairs) and the share under 1 and 3 px.
// Frames of any size at least train_size are tiled as in `perceiver flow`. --png-dir writes the
// colour-wheel pictures of prediction and ground truth per pair (named K_NAME_pred.png with the
// folder's index K when there are several folders); --json the figures.
#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "finite_check.h"
#include "hf_task_util.h"
#include "perceiver/core/error.h"
#include "perceiver/data/optical_flow.h"
#include "perceiver/io/atomic_file.h"
#include "perceiver/tasks/optical_flow.h"

namespace perceiver::cli {
namespace {

nlohmann::json errors_json(const data::FlowErrors& e) {
  return {{"pairs", e.pairs}, {"known_pixels", e.known}, {"epe", e.epe()}, {"under_1px", e.share_under1()},
          {"under_3px", e.share_under3()}};
}

// The largest known magnitude of a flow (the colour scale shared by prediction and truth).
float largest_known(const Tensor& flow) {
  float m = 0;
  for (int64_t i = 0; i < flow.numel(); i += 2)
    if (data::flow_known(flow.f32()[i], flow.f32()[i + 1])) m = std::max(m, std::hypot(flow.f32()[i], flow.f32()[i + 1]));
  return m;
}

}  // namespace

Runner add_flow_eval_command(CLI::App& sub) {
  struct Args {
    std::string model, json, png_dir;
    std::vector<std::string> folders;
    tasks::FlowOptions flow;
    int64_t limit = 0;
    int64_t max_pixels = data::kDefaultMaxImagePixels;
    CommonOptions common;
  };
  auto a = std::make_shared<Args>();
  sub.add_option("--model", a->model, "HF PerceiverForOpticalFlow folder (config.json + model.safetensors)")
      ->required()->check(CLI::ExistingDirectory);
  sub.add_option("folders", a->folders, "folders of NAME_img1.png, NAME_img2.png, NAME_flow.flo (FlyingChairs layout)")
      ->required()->check(CLI::ExistingDirectory);
  add_flow_tiling_options(sub, a->flow);
  sub.add_option("--limit", a->limit, "evaluate at most this many pairs per folder (0 = all)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  sub.add_option("--json", a->json, "also write the figures as JSON");
  sub.add_option("--png-dir", a->png_dir, "write NAME_pred.png and NAME_true.png colour-wheel pictures here");
  add_image_limit_option(sub, a->max_pixels);
  add_common_options(sub, a->common);
  add_precision_option(sub, a->common);
  add_nonfinite_option(sub, a->common.allow_nonfinite);
  return [a]() {
    namespace pio = models::perceiver_io;
    apply_common_options(a->common);
    // every folder is listed (and its pairs' names checked) before the model runs
    std::vector<std::vector<data::FlowPairFiles>> pairs;
    for (const std::string& f : a->folders) {
      pairs.push_back(data::list_flow_pairs(f));
      if (a->limit > 0 && static_cast<int64_t>(pairs.back().size()) > a->limit) pairs.back().resize(a->limit);
    }
    if (!a->png_dir.empty()) std::filesystem::create_directories(a->png_dir);
    std::unique_ptr<pio::PerceiverIO> model = load_task_model(a->model, {pio::PerceiverTask::kOpticalFlow}, "flow-eval");
    check_finite_parameters(*model, "flow-eval", a->model, a->common.allow_nonfinite);
    apply_precision(*model, a->common);
    tasks::FlowOptions options = a->flow;
    options.allow_nonfinite = a->common.allow_nonfinite;
    options.command = "flow-eval";
    nlohmann::json out = {{"model", a->model}, {"folders", nlohmann::json::array()}};
    std::printf("| folder | pairs | known pixels | EPE (px) | < 1 px | < 3 px | zero flow: EPE | < 1 px | < 3 px |\n"
                "|---|---|---|---|---|---|---|---|---|\n");
    for (size_t k = 0; k < pairs.size(); ++k) {
      data::FlowErrors model_errors, zero_errors;
      for (const data::FlowPairFiles& f : pairs[k]) {
        const data::FlowExample e = data::read_flow_pair(f, a->max_pixels);
        const Tensor pred = tasks::estimate_flow(*model, e.frame1, e.frame2, options);
        data::add_flow_errors(pred, e.flow, model_errors);
        data::add_flow_errors(Tensor::zeros(e.flow.shape()), e.flow, zero_errors);
        if (!a->png_dir.empty()) {  // several folders: their index first, so that names never collide
          const float scale = std::max(largest_known(e.flow), 1e-3f);
          const std::string stem = a->png_dir + "/" + (pairs.size() > 1 ? std::to_string(k) + "_" : "") + f.name;
          data::write_png_rgb(stem + "_pred.png", data::flow_to_color(pred, scale));
          data::write_png_rgb(stem + "_true.png", data::flow_to_color(e.flow, scale));
        }
      }
      std::printf("| %s | %lld | %lld | %.3f | %.2f%% | %.2f%% | %.3f | %.2f%% | %.2f%% |\n", a->folders[k].c_str(),
                  (long long)model_errors.pairs, (long long)model_errors.known, model_errors.epe(),
                  100 * model_errors.share_under1(), 100 * model_errors.share_under3(), zero_errors.epe(),
                  100 * zero_errors.share_under1(), 100 * zero_errors.share_under3());
      std::fflush(stdout);
      out["folders"].push_back({{"folder", a->folders[k]}, {"model", errors_json(model_errors)}, {"zero_flow", errors_json(zero_errors)}});
    }
    if (!a->json.empty()) io::write_file_atomic(a->json, out.dump(2) + "\n");
    return 0;
  };
}

}  // namespace perceiver::cli
