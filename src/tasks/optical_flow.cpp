// Tiled optical flow with PerceiverForOpticalFlow (see tasks/optical_flow.h).
#include "perceiver/tasks/optical_flow.h"

#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/error.h"
#include "perceiver/data/optical_flow.h"
#include "perceiver/tasks/common.h"

namespace perceiver::tasks {

namespace pio = models::perceiver_io;

Tensor estimate_flow(const pio::PerceiverIO& model, const data::RgbImage& f1, const data::RgbImage& f2,
                     const FlowOptions& o, size_t* tiles) {
  check(model.task() == pio::PerceiverTask::kOpticalFlow, "[", o.command, "] expected a PerceiverForOpticalFlow model, "
        "got a ", model.architecture());
  check(f1.height == f2.height && f1.width == f2.width, "[", o.command, "] the frames must have the same size, got ",
        f1.height, " x ", f1.width, " and ", f2.height, " x ", f2.width);
  check(o.min_overlap >= 0 && o.tile_batch >= 1, "[", o.command, "] expected min_overlap >= 0 and tile_batch >= 1, got ",
        o.min_overlap, " and ", o.tile_batch);
  const int64_t th = model.config().train_size[0], tw = model.config().train_size[1];
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
