// Training-time augmentation, deterministic for a given Rng state. Images, float32 (H, W):
// optional horizontal flip (p = 0.5), then a random shift by up to max_shift pixels in x and y
// with zero fill (the same as zero-padding by max_shift and taking a random crop), then optional
// random erasing of one rectangle. Point clouds,
// (n, 3): a random rotation, an isotropic scale and Gaussian jitter.
#pragma once

#include <cstdint>
#include <string>

#include "perceiver/core/random.h"
#include "perceiver/core/tensor.h"

namespace perceiver::data {

struct AugmentConfig {
  int max_shift = 0;
  bool hflip = false;
  // random erasing (Zhong et al. 2017): with this probability one rectangle of area in
  // [0.02, 0.4] of the image and aspect ratio h / w log-uniform in [0.3, 3.3] is filled with
  // uniform random values in [0, 1]; 0 = off
  float erase_prob = 0.0f;
};

// Moves the content by (dy, dx) pixels: out[y][x] = in[y - dy][x - dx], zero outside.
void shift_image(float* image, int64_t h, int64_t w, int64_t dy, int64_t dx);
// Mirrors each row: out[y][x] = in[y][w - 1 - x].
void hflip_image(float* image, int64_t h, int64_t w);

// Fills one random rectangle as random erasing does (up to 10 tries for a rectangle that fits;
// none when no try fits). Draws: per try the area and aspect ratio, then the corner and fill.
void erase_random_rectangle(float* image, int64_t h, int64_t w, Rng& rng);

// Augments one image in place. Draws, in order: flip (if cfg.hflip), dy, dx (if max_shift > 0),
// then (if erase_prob > 0) whether to erase and the rectangle.
void augment_image(float* image, int64_t h, int64_t w, const AugmentConfig& cfg, Rng& rng);
// A sequence of T frames of F values (waveform frames): moves it by a random whole number of
// frames in [-max_shift, max_shift] with zero fill (one draw; none when max_shift is 0).
void augment_time_shift(float* frames, int64_t t, int64_t f, int max_shift, Rng& rng);
// `images` is (H, W) or (B, H, W) float32; batch items are augmented in order, each with its own
// draws from rng.
void augment(Tensor& images, const AugmentConfig& cfg, Rng& rng);

struct PointAugmentConfig {
  std::string rotate = "none";  // "none", "z" (about the vertical axis), "xyz" (uniform over all rotations)
  float scale_min = 1.0f, scale_max = 1.0f;  // one isotropic factor, uniform in [min, max]
  float jitter = 0.0f;          // standard deviation of Gaussian noise added to every coordinate
};
// Augments n points (x, y, z) in place. Draws, in order: the rotation (z: one angle; xyz: a
// uniform unit quaternion from 4 normals), the scale (if max > min), then 3 n normals (if jitter > 0).
void augment_points(float* xyz, int64_t n, const PointAugmentConfig& cfg, Rng& rng);

}  // namespace perceiver::data
