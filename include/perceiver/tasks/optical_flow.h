// Optical flow with PerceiverForOpticalFlow for every front end (the `flow` command, the Python
// module): frames of any size at least the model's train_size, as overlapping tiles of
// train_size (min_overlap, upstream 20) blended with distance-to-edge weights, as DeepMind's
// optical_flow colab does. The model's output times flow_scale (upstream FLOW_SCALE_FACTOR 20,
// which gives pixels; deepmind-research issue 266).
#pragma once

#include <cstdint>
#include <string>

#include "perceiver/data/image_processor.h"
#include "perceiver/models/perceiver_io/perceiver_io.h"

namespace perceiver::tasks {

struct FlowOptions {
  int64_t min_overlap = 20;  // minimum overlap of neighbouring tiles in pixels
  int64_t tile_batch = 1;    // tiles per forward pass
  // > 1: the model sees both frames shrunk by this factor (Pillow's antialiased bilinear resize),
  // and its flow is resized back (bilinear) and multiplied by the factors of the two sizes, so a
  // model trained on small motions can measure large ones, as coarse levels of a pyramid do
  int64_t downscale = 1;
  float flow_scale = 20.0f;  // multiplies the model's output
  bool allow_nonfinite = false;
  std::string command = "flow";  // names the caller in error messages
};

// (H, W, 2) float32 flow from frame1 to frame2 (u horizontal, v vertical, in pixels at the
// default scale); the frames must have the same size (after downscale: at least train_size).
// tiles (optional) receives the tile count.
Tensor estimate_flow(const models::perceiver_io::PerceiverIO& model, const data::RgbImage& frame1,
                     const data::RgbImage& frame2, const FlowOptions& options = {}, size_t* tiles = nullptr);

}  // namespace perceiver::tasks
