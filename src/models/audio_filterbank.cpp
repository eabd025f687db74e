// Mel-spaced Gabor filterbank and SpecAugment masks (see the header for the exact definitions).
#include "perceiver/models/audio_filterbank.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "perceiver/core/error.h"

namespace perceiver::models {

namespace {
double hz_to_mel(double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); }
double mel_to_hz(double mel) { return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0); }
}  // namespace

void mel_gabor_filterbank(int64_t frame, int64_t filters, double sample_rate, float* weight) {
  const double kPi = 3.14159265358979323846;
  const double lo = hz_to_mel(60.0), hi = hz_to_mel(0.95 * sample_rate / 2.0);
  // centre frequencies (Hz), with one extra point each side for the bandwidths
  std::vector<double> f(static_cast<size_t>(filters + 2));
  for (int64_t k = 0; k < filters + 2; ++k)
    f[static_cast<size_t>(k)] = mel_to_hz(lo + (hi - lo) * static_cast<double>(k) / static_cast<double>(filters + 1));
  const double centre = 0.5 * static_cast<double>(frame - 1);
  std::vector<double> w(static_cast<size_t>(frame));
  for (int64_t k = 0; k < filters; ++k) {
    const double fc = f[static_cast<size_t>(k + 1)];
    const double band = 0.5 * (f[static_cast<size_t>(k + 2)] - f[static_cast<size_t>(k)]);  // Hz, FWHM target
    // Gaussian window: frequency std = sample_rate / (2 pi sigma_t); FWHM = 2.355 x that
    const double sigma_t = std::min(2.355 * sample_rate / (2.0 * kPi * band), 0.25 * static_cast<double>(frame));
    double sum = 0.0;
    for (int64_t n = 0; n < frame; ++n) {
      const double t = static_cast<double>(n) - centre;
      const double hann = 0.5 - 0.5 * std::cos(2.0 * kPi * (static_cast<double>(n) + 0.5) / static_cast<double>(frame));
      w[static_cast<size_t>(n)] = hann * std::exp(-0.5 * t * t / (sigma_t * sigma_t));
      sum += w[static_cast<size_t>(n)];
    }
    const double scale = 2.0 / sum;  // sum(w cos^2) ~ sum(w) / 2 -> response amplitude A
    const double omega = 2.0 * kPi * fc / sample_rate;
    float* c = weight + (2 * k) * frame;
    float* s = weight + (2 * k + 1) * frame;
    for (int64_t n = 0; n < frame; ++n) {
      const double t = static_cast<double>(n) - centre;
      c[n] = static_cast<float>(scale * w[static_cast<size_t>(n)] * std::cos(omega * t));
      s[n] = static_cast<float>(scale * w[static_cast<size_t>(n)] * std::sin(omega * t));
    }
  }
}

Tensor spec_augment_mask(int64_t b, int64_t m, int64_t f, int channel_masks, int64_t channel_width,
                         int element_masks, int64_t element_width, Rng& rng) {
  check(b >= 0 && m > 0 && f > 0 && channel_width >= 0 && channel_width <= f && element_width >= 0 &&
            element_width <= m,
        "[spec_augment_mask] expected widths within the features (", f, " channels, ", m, " elements), got ",
        channel_width, " and ", element_width);
  Tensor mask = Tensor::full({b, m, f}, 1.0f);
  auto draw = [&rng](int64_t n) { return static_cast<int64_t>(rng.below(static_cast<uint32_t>(n))); };  // [0, n)
  for (int64_t e = 0; e < b; ++e) {
    float* pe = mask.f32() + e * m * f;
    for (int k = 0; k < channel_masks; ++k) {
      const int64_t width = draw(channel_width + 1), start = draw(f - width + 1);
      for (int64_t t = 0; t < m; ++t) std::fill_n(pe + t * f + start, width, 0.0f);
    }
    for (int k = 0; k < element_masks; ++k) {
      const int64_t width = draw(element_width + 1), start = draw(m - width + 1);
      std::fill_n(pe + start * f, width * f, 0.0f);
    }
  }
  return mask;
}

}  // namespace perceiver::models
