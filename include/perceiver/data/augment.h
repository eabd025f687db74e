// Training-time augmentation of float32 (H, W) images, deterministic for a given Rng state:
// optional horizontal flip (p = 0.5), then a random shift by up to max_shift pixels in x and y
// with zero fill (the same as zero-padding by max_shift and taking a random crop).
#pragma once

#include <cstdint>

#include "perceiver/core/random.h"
#include "perceiver/core/tensor.h"

namespace perceiver::data {

struct AugmentConfig {
  int max_shift = 0;
  bool hflip = false;
};

// Moves the content by (dy, dx) pixels: out[y][x] = in[y - dy][x - dx], zero outside.
void shift_image(float* image, int64_t h, int64_t w, int64_t dy, int64_t dx);
// Mirrors each row: out[y][x] = in[y][w - 1 - x].
void hflip_image(float* image, int64_t h, int64_t w);

// Augments one image in place. Draws, in order: flip (if cfg.hflip), dy, dx (if max_shift > 0).
void augment_image(float* image, int64_t h, int64_t w, const AugmentConfig& cfg, Rng& rng);
// A sequence of T frames of F values (waveform frames): moves it by a random whole number of
// frames in [-max_shift, max_shift] with zero fill (one draw; none when max_shift is 0).
void augment_time_shift(float* frames, int64_t t, int64_t f, int max_shift, Rng& rng);
// `images` is (H, W) or (B, H, W) float32; batch items are augmented in order, each with its own
// draws from rng.
void augment(Tensor& images, const AugmentConfig& cfg, Rng& rng);

}  // namespace perceiver::data
