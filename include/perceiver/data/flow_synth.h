// FlyingChairs-style synthetic optical-flow pairs (the recipe of Dosovitskiy et al. 2015,
// FlowNet): a background photograph and 3-8 RGBA sprites (clip art with transparency), each
// layer placed with its own random affine map and moved between the frames by a second, small
// random affine motion. Frame 2 is rendered by inverse-mapping every layer (bilinear; sprites
// are zero outside their image, the background is clamped at its border), so the ground truth
// is exact: the flow at a frame-1 pixel is the motion of the top-most layer there (alpha >= 0.5),
// and a pixel is visible in frame 2 when that same layer is top-most where it lands.
//
// Assets: DIR/backgrounds/*.png|jpg (colour photographs; scaled at load so that the shorter
// side is background_side pixels) and DIR/sprites/*.png (RGBA; scaled at load so that the
// longer side is at most sprite_side pixels, by area averaging of premultiplied colour).
// scripts/fetch_flow_data.sh builds such a folder from Debian packages.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "perceiver/core/random.h"
#include "perceiver/core/tensor.h"
#include "perceiver/data/image_processor.h"

namespace perceiver::data {

// Premultiplied RGBA in [0, 1], row-major (H, W, 4).
struct RgbaImage {
  int64_t height = 0, width = 0;
  std::vector<float> pixels;
};

struct FlowAssetOptions {
  int64_t background_side = 192;  // shorter side of each background after scaling
  int64_t sprite_side = 96;       // longer side of each sprite at most (never enlarged)
  int64_t max_sprites = 0;        // read at most this many sprites (in file-name order); 0 = all
};

struct FlowAssets {
  std::vector<RgbImage> backgrounds;
  std::vector<RgbaImage> sprites;
  std::vector<std::string> background_files, sprite_files;
};

// Reads DIR/backgrounds and DIR/sprites (file names sorted). Errors name the folder or file: a
// missing folder, a folder without images, an image that does not decode.
FlowAssets load_flow_assets(const std::string& dir, const FlowAssetOptions& options = {});

struct FlowSynthOptions {
  int64_t height = 64, width = 64;  // frame size
  int min_sprites = 3, max_sprites = 8;
  // a sprite's longer side on the canvas, as a share of the canvas's shorter side
  float sprite_min_size = 0.25f, sprite_max_size = 0.6f;
  // motion between the frames, each drawn uniformly in [-x, x]: translation in pixels per
  // axis, rotation in radians about the layer's centre, relative scale change
  float background_translation = 4.0f, background_rotation = 0.05f, background_scale = 0.05f;
  float sprite_translation = 8.0f, sprite_rotation = 0.3f, sprite_scale = 0.1f;
  // A procedural texture painted on every layer, moving with it (so the flow stays exact):
  // colour = (1 - texture) * colour + texture * noise, where noise is value noise of three octaves
  // (cells of texture_cell, 2x and 4x that, in canvas pixels at placement). Photographs and clip
  // art are smooth at the pixel scale, where a 3x3 patch sees motion; texture gives every pixel
  // something to match. 0 (the default) draws exactly the pairs of an untextured generator.
  float texture = 0.0f, texture_cell = 1.5f;
};

struct FlowPair {
  RgbImage frame1, frame2;
  Tensor flow;     // (H, W, 2) float32: (u, v) from frame 1 to frame 2 in pixels
  std::vector<uint8_t> visible;  // (H, W): 1 where the frame-1 pixel is visible in frame 2
};

// Checks the options (sizes >= 1, counts and ranges ordered and non-negative).
void check_flow_synth_options(const FlowSynthOptions& options);

// One pair; every random draw comes from rng, so the same rng state gives the same pair.
FlowPair synthesize_flow_pair(const FlowAssets& assets, const FlowSynthOptions& options, Rng& rng);

}  // namespace perceiver::data
