// A mel-spaced Gabor filterbank for raw-waveform frames: the starting point of the Perceiver
// classifier's learned "log_power" input projection (a learned filterbank initialised as a
// log-mel-like spectrogram, as in LEAF / SincNet-style front ends), and SpecAugment masks.
#pragma once

#include <cstdint>

#include "perceiver/core/random.h"
#include "perceiver/core/tensor.h"

namespace perceiver::models {

// Writes `filters` cos/sin pairs over a frame of `frame` samples into `weight` (2 * filters rows of
// `frame` values, row 2k = cos, row 2k+1 = sin of filter k). Filter k is centred at the k-th of
// `filters` frequencies equally spaced on the mel scale between 60 Hz and 0.95 x Nyquist; its
// window is a Gaussian whose frequency response is as wide (at half maximum) as the spacing of
// its neighbours, times a Hann window over the frame, scaled so that a sinusoid of amplitude A at
// the centre frequency gives a mean squared pair of A^2 / 2 (whatever its phase).
void mel_gabor_filterbank(int64_t frame, int64_t filters, double sample_rate, float* weight);

// A SpecAugment mask (Park et al. 2019) for (B, M, F) features: 1 everywhere except, in each
// example, `channel_masks` bands of w ~ U{0..channel_width} consecutive channels (all elements)
// and `element_masks` spans of w ~ U{0..element_width} consecutive elements (all channels), each
// at a uniform offset. Needs channel_width <= F and element_width <= M.
Tensor spec_augment_mask(int64_t b, int64_t m, int64_t f, int channel_masks, int64_t channel_width,
                         int element_masks, int64_t element_width, Rng& rng);

}  // namespace perceiver::models
