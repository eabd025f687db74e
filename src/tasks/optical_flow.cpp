// Tiled optical flow with PerceiverForOpticalFlow (see tasks/optical_flow.h).
#include "perceiver/tasks/optical_flow.h"

#include <algorithm>

#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/error.h"
#include "perceiver/data/optical_flow.h"
#include "perceiver/tasks/common.h"

namespace perceiver::tasks {

namespace pio = models::perceiver_io;

namespace {

// flow (h, w, 2) resized to (H, W, 2) by bilinear interpolation (pixel centres aligned, border
// clamped), u multiplied by W / w and v by H / h: the same motion measured in the larger frame.
Tensor upsample_flow(const Tensor& flow, int64_t H, int64_t W) {
  const int64_t h = flow.dim(0), w = flow.dim(1);
  const double sy = static_cast<double>(h) / H, sx = static_cast<double>(w) / W;
  Tensor out = Tensor::empty({H, W, 2});
  const float* src = flow.f32();
  float* dst = out.f32();
  for (int64_t y = 0; y < H; ++y) {
    const double fy = std::clamp((y + 0.5) * sy - 0.5, 0.0, static_cast<double>(h - 1));
    const int64_t y0 = std::min<int64_t>(static_cast<int64_t>(fy), h - 1), y1 = std::min<int64_t>(y0 + 1, h - 1);
    const float wy = static_cast<float>(fy - y0);
    for (int64_t x = 0; x < W; ++x) {
      const double fx = std::clamp((x + 0.5) * sx - 0.5, 0.0, static_cast<double>(w - 1));
      const int64_t x0 = std::min<int64_t>(static_cast<int64_t>(fx), w - 1), x1 = std::min<int64_t>(x0 + 1, w - 1);
      const float wx = static_cast<float>(fx - x0);
      for (int c = 0; c < 2; ++c) {
        const float top = (1 - wx) * src[(y0 * w + x0) * 2 + c] + wx * src[(y0 * w + x1) * 2 + c];
        const float bottom = (1 - wx) * src[(y1 * w + x0) * 2 + c] + wx * src[(y1 * w + x1) * 2 + c];
        dst[(y * W + x) * 2 + c] = ((1 - wy) * top + wy * bottom) * static_cast<float>(c == 0 ? 1 / sx : 1 / sy);
      }
    }
  }
  return out;
}

}  // namespace

Tensor estimate_flow(const pio::PerceiverIO& model, const data::RgbImage& f1, const data::RgbImage& f2,
                     const FlowOptions& o, size_t* tiles) {
  check(model.task() == pio::PerceiverTask::kOpticalFlow, "[", o.command, "] expected a PerceiverForOpticalFlow model, "
        "got a ", model.architecture());
  check(f1.height == f2.height && f1.width == f2.width, "[", o.command, "] the frames must have the same size, got ",
        f1.height, " x ", f1.width, " and ", f2.height, " x ", f2.width);
  check(o.min_overlap >= 0 && o.tile_batch >= 1, "[", o.command, "] expected min_overlap >= 0 and tile_batch >= 1, got ",
        o.min_overlap, " and ", o.tile_batch);
  const int64_t th = model.config().train_size[0], tw = model.config().train_size[1];
  check(o.downscale >= 1 && o.downscale <= 64, "[", o.command, "] expected downscale in [1, 64], got ", o.downscale);
  if (o.downscale > 1) {
    // both frames shrunk by the factor, the flow measured there and brought back to full size
    const int64_t h = f1.height / o.downscale, w = f1.width / o.downscale;
    check(h >= th && w >= tw, "[", o.command, "] frames of ", f1.height, " x ", f1.width, " shrunk by ", o.downscale,
          " are ", h, " x ", w, ", smaller than the model's train_size ", th, " x ", tw, "; use a smaller downscale");
    FlowOptions inner = o;
    inner.downscale = 1;
    const Tensor small = estimate_flow(model, data::pillow_resize(f1, h, w, data::Resample::kBilinear),
                                       data::pillow_resize(f2, h, w, data::Resample::kBilinear), inner, tiles);
    return upsample_flow(small, f1.height, f1.width);
  }
  if (tiles) *tiles = data::flow_tile_origins(f1.height, f1.width, th, tw, o.min_overlap).size();
  autograd::NoGradGuard no_grad;
  Tensor flow = data::tiled_flow(
      f1, f2, th, tw, o.min_overlap,
      [&model](const Tensor& features) { return model.forward({{"inputs", features}}).at("logits"); }, o.tile_batch);
  check_finite("flow", flow, o.command, "the frames", "output", o.allow_nonfinite);
  float* p = flow.f32();
  for (int64_t i = 0; i < flow.numel(); ++i) p[i] *= o.flow_scale;
  return flow;
}

}  // namespace perceiver::tasks
