// Moving Fashion-MNIST clips with a spoken-digit soundtrack: the audio-visual set of the
// multimodal autoencoding task (after AV-MNIST, which pairs MNIST images with FSDD speech).
// A clip of class c (0-9):
//   video (T, 3, S, S) in [0, 1]: a Fashion-MNIST item of class c, shrunk to item_size pixels by
//         area averaging, moving over a black S x S canvas along one of four motion classes
//         (0: horizontal bounce, 1: vertical bounce, 2: diagonal bounce, 3: circle) from a random
//         phase, one period over the T frames; the grey value repeated to R, G, B;
//   audio (T * samples_per_frame, 1) in [-1, 1]: an FSDD recording of the spoken digit c,
//         peak-normalised, centred in the window (zero padded, or its middle when longer);
//   label c (the Fashion-MNIST class, which the soundtrack names as a digit) and the motion class.
// FSDD files are named {digit}_{speaker}_{take}.wav (8 kHz mono); takes 0-4 are FSDD's test set.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "perceiver/core/random.h"
#include "perceiver/core/tensor.h"
#include "perceiver/data/dataset.h"

namespace perceiver::data {

struct MovingAvOptions {
  int64_t frames = 16;              // T
  int64_t size = 32;                // S: canvas side
  int64_t item_size = 16;           // the item's side on the canvas
  int64_t samples_per_frame = 320;  // audio samples per video frame (8 kHz: 16 x 320 = 0.64 s)
};
constexpr int kMotionClasses = 4;
constexpr int64_t kSpokenDigitRate = 8000;  // FSDD's sample rate: the soundtracks' rate

struct AvClip {
  Tensor video;  // (T, 3, S, S)
  Tensor audio;  // (T * samples_per_frame, 1)
  int32_t label = 0, motion = 0;
};

// Spoken digits by class: recordings[d] holds the peak-normalised waveforms of digit d.
struct SpokenDigits {
  std::vector<std::vector<std::vector<float>>> recordings = std::vector<std::vector<std::vector<float>>>(10);
  int64_t count() const;
};
// Reads the FSDD folder dir ({digit}_{speaker}_{take}.wav, 8 kHz), keeping the test takes (0-4)
// when test, the others otherwise. Errors name the folder or file; every digit must have a
// recording.
SpokenDigits load_spoken_digits(const std::string& dir, bool test);

void check_moving_av_options(const MovingAvOptions& o);

// One clip from a 28 x 28 item in [0, 1] (row-major), its class, a recording, the motion class and
// the phase in [0, 1).
AvClip make_av_clip(const float* item, int32_t label, const std::vector<float>& speech, int motion, double phase,
                    const MovingAvOptions& o);

// A clip drawn at random: an item of `images` (a (N, 28, 28) Fashion-MNIST set), a recording of its
// class, a motion class and a phase, in that order from rng.
AvClip draw_av_clip(const Dataset& images, const SpokenDigits& speech, const MovingAvOptions& o, Rng& rng);

// Peak signal-to-noise ratio in dB of a reconstruction against its target for a signal whose
// range is `peak` (1 for video in [0, 1]; 2 for audio in [-1, 1]): 10 log10(peak^2 / MSE); +inf
// when they are equal.
double psnr(double mse, double peak);

}  // namespace perceiver::data
