// Tiled optical flow with PerceiverForOpticalFlow (see tasks/optical_flow.h).
#include "perceiver/tasks/optical_flow.h"

#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/error.h"
#include "perceiver/data/image.h"
#include "perceiver/data/optical_flow.h"
#include "perceiver/tasks/common.h"

namespace perceiver::tasks {

namespace pio = models::perceiver_io;

namespace {

// flow (h, w, 2) resized to (H, W, 2) by data::resize_plane (bilinear, pixel centres aligned,
// border clamped), u multiplied by W / w and v by H / h: the same motion in the larger frame.
Tensor upsample_flow(const Tensor& flow, int64_t H, int64_t W) {
  const int64_t h = flow.dim(0), w = flow.dim(1);
  Tensor out = Tensor::empty({H, W, 2});
  for (int c = 0; c < 2; ++c) {
    Tensor plane = Tensor::empty({h, w});
    for (int64_t i = 0; i < h * w; ++i) plane.f32()[i] = flow.f32()[i * 2 + c];
    const Tensor big = data::resize_plane(plane, static_cast<int>(H), static_cast<int>(W));
    const float ratio = c == 0 ? static_cast<float>(W) / w : static_cast<float>(H) / h;
    for (int64_t i = 0; i < H * W; ++i) out.f32()[i * 2 + c] = big.f32()[i] * ratio;
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
