// `perceiver flow --model DIR FRAME1 FRAME2 --out FLOW.flo [--png FLOW.png]`: optical flow from
// FRAME1 to FRAME2 with a Hugging Face PerceiverForOpticalFlow folder, for frames of any size at
// least train_size: overlapping tiles of train_size (--min-overlap, upstream 20) blended with
// distance-to-edge weights, as DeepMind's optical_flow colab does. The model's output is
// multiplied by --flow-scale (upstream FLOW_SCALE_FACTOR 20, which gives pixels; deepmind-research
// issue 266). Writes Middlebury .flo (u = horizontal, v = vertical displacement) and, with --png,
// the Baker et al. colour-wheel picture.
#include <cmath>
#include <cstdio>

#include "commands.h"
#include "finite_check.h"
#include "hf_task_util.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/error.h"
#include "perceiver/data/optical_flow.h"
#include "perceiver/tasks/optical_flow.h"

namespace perceiver::cli {

void add_flow_tiling_options(CLI::App& sub, tasks::FlowOptions& o) {
  sub.add_option("--min-overlap", o.min_overlap, "minimum overlap of neighbouring tiles in pixels (default 20)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 16));
  sub.add_option("--tile-batch", o.tile_batch, "tiles per forward pass (default 1; more is faster, uses more memory)")
      ->check(CLI::Range(int64_t{1}, int64_t{1024}));
  sub.add_option("--downscale", o.downscale, "run the model on both frames shrunk by this factor and bring its flow back "
                 "to full size (default 1; a model trained on small motions then measures larger ones)")
      ->check(CLI::Range(int64_t{1}, int64_t{64}));
}

Runner add_flow_command(CLI::App& sub) {
  struct Args {
    std::string model, frame1, frame2, out, png;
    tasks::FlowOptions flow;
    float max_flow = 0.0f;
    int64_t max_pixels = data::kDefaultMaxImagePixels;
    CommonOptions common;
  };
  auto a = std::make_shared<Args>();
  sub.add_option("--model", a->model, "HF PerceiverForOpticalFlow folder (config.json + model.safetensors or pytorch_model.bin)")
      ->required()->check(CLI::ExistingDirectory);
  sub.add_option("frame1", a->frame1, "first frame (PNG, JPEG, binary PGM/PPM)")->required();
  sub.add_option("frame2", a->frame2, "second frame, same size")->required();
  sub.add_option("--out", a->out, "output flow, Middlebury .flo")->required();
  sub.add_option("--png", a->png, "also write the flow as a colour-wheel PNG");
  add_flow_tiling_options(sub, a->flow);
  sub.add_option("--flow-scale", a->flow.flow_scale, "multiply the model output by this (default 20: pixels)")
      ->check(finite_range(-1e6, 1e6));
  sub.add_option("--max-flow", a->max_flow, "PNG: flow magnitude of full saturation (default: the largest in the field)")
      ->check(finite_range(0.0, 1e9));
  add_image_limit_option(sub, a->max_pixels);
  add_common_options(sub, a->common);
  add_precision_option(sub, a->common);
  add_nonfinite_option(sub, a->common.allow_nonfinite);
  return [a]() {
    namespace pio = models::perceiver_io;
    apply_common_options(a->common);
    const data::RgbImage f1 = data::load_image_rgb(a->frame1, a->max_pixels),
                         f2 = data::load_image_rgb(a->frame2, a->max_pixels);
    check(f1.height == f2.height && f1.width == f2.width, "[flow] the frames must have the same size, got ", f1.height,
          " x ", f1.width, " (", a->frame1, ") and ", f2.height, " x ", f2.width, " (", a->frame2, ")");
    std::unique_ptr<pio::PerceiverIO> model = load_task_model(a->model, {pio::PerceiverTask::kOpticalFlow}, "flow");
    check_finite_parameters(*model, "flow", a->model, a->common.allow_nonfinite);
    apply_precision(*model, a->common);
    const int64_t th = model->config().train_size[0], tw = model->config().train_size[1];
    tasks::FlowOptions options = a->flow;
    options.allow_nonfinite = a->common.allow_nonfinite;
    size_t tiles = 0;
    const Tensor flow = tasks::estimate_flow(*model, f1, f2, options, &tiles);  // nothing is written on an error
    float max_rad = 0;
    for (int64_t i = 0; i < flow.numel(); i += 2) max_rad = std::max(max_rad, std::hypot(flow.f32()[i], flow.f32()[i + 1]));
    data::write_flo(a->out, flow);
    std::printf("wrote %s: %lld x %lld flow from %zu tile%s of %lld x %lld%s, largest magnitude %.4f\n", a->out.c_str(),
                static_cast<long long>(f1.height), static_cast<long long>(f1.width), tiles, tiles == 1 ? "" : "s",
                static_cast<long long>(th), static_cast<long long>(tw),
                options.downscale > 1 ? (" (frames shrunk by " + std::to_string(options.downscale) + ")").c_str() : "",
                max_rad);
    if (!a->png.empty()) {
      data::write_png_rgb(a->png, data::flow_to_color(flow, a->max_flow));
      std::printf("wrote %s\n", a->png.c_str());
    }
    return 0;
  };
}

}  // namespace perceiver::cli
