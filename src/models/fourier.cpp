// Linear position grid and Fourier features (HF modeling_perceiver, spec 5.2-5.3).
#include "perceiver/models/fourier.h"

#include <cmath>

namespace perceiver::models {

std::vector<float> linspace(float start, float end, int64_t n) {
  std::vector<float> out(static_cast<size_t>(std::max<int64_t>(n, 0)));
  if (n == 1) out[0] = start;
  if (n <= 1) return out;
  const float step = (end - start) / static_cast<float>(n - 1);
  const int64_t half = n / 2;
  for (int64_t i = 0; i < n; ++i)
    out[i] = i < half ? start + step * static_cast<float>(i)
                      : end - step * static_cast<float>(n - 1 - i);
  return out;
}

Tensor linear_positions(const std::vector<int64_t>& dims) {
  check(!dims.empty(), "[linear_positions] needs at least one dimension");
  for (int64_t d : dims) check(d > 0, "[linear_positions] dimensions must be positive, got ", d);
  const int64_t nd = static_cast<int64_t>(dims.size());
  std::vector<std::vector<float>> axes;
  int64_t total = 1;
  for (int64_t d : dims) {
    axes.push_back(linspace(-1.0f, 1.0f, d));
    total *= d;
  }
  Tensor pos = Tensor::empty({total, nd});
  float* p = pos.f32();
  std::vector<int64_t> idx(nd, 0);
  for (int64_t t = 0; t < total; ++t) {
    for (int64_t k = 0; k < nd; ++k) p[t * nd + k] = axes[k][idx[k]];
    for (int64_t k = nd - 1; k >= 0; --k) {  // row-major: last axis fastest
      if (++idx[k] < dims[k]) break;
      idx[k] = 0;
    }
  }
  return pos;
}

int64_t fourier_feature_width(int64_t dims, int64_t num_bands, bool concat_pos, bool sine_only) {
  return (concat_pos ? dims : 0) + dims * num_bands * (sine_only ? 1 : 2);
}

Tensor fourier_features(const Tensor& pos, int64_t num_bands, const std::vector<int64_t>& max_resolution,
                        bool concat_pos, bool sine_only) {
  check(pos.rank() == 2, "[fourier_features] pos must be (T, d), got ", shape_str(pos.shape()));
  const int64_t t_count = pos.dim(0), d = pos.dim(1);
  check(static_cast<int64_t>(max_resolution.size()) == d, "[fourier_features] max_resolution has ",
        max_resolution.size(), " entries, positions have ", d, " dims");
  check(num_bands >= 1, "[fourier_features] num_bands must be >= 1, got ", num_bands);
  std::vector<std::vector<float>> freqs;
  for (int64_t r : max_resolution) freqs.push_back(linspace(1.0f, static_cast<float>(r) / 2.0f, num_bands));
  const int64_t width = fourier_feature_width(d, num_bands, concat_pos, sine_only);
  const int64_t dk = d * num_bands;
  const float pi = static_cast<float>(M_PI);
  Tensor out = Tensor::empty({t_count, width});
  const float* p = pos.f32();
  float* o = out.f32();
  for (int64_t t = 0; t < t_count; ++t) {
    float* row = o + t * width;
    if (concat_pos)
      for (int64_t k = 0; k < d; ++k) row[k] = p[t * d + k];
    float* sin_block = row + (concat_pos ? d : 0);
    float* cos_block = sin_block + dk;
    for (int64_t k = 0; k < d; ++k) {
      for (int64_t b = 0; b < num_bands; ++b) {
        const float u = p[t * d + k] * freqs[k][b];  // one float32 rounding
        const float arg = pi * u;                    // a second one, as PyTorch
        sin_block[k * num_bands + b] = std::sin(arg);
        if (!sine_only) cos_block[k * num_bands + b] = std::cos(arg);
      }
    }
  }
  return out;
}

}  // namespace perceiver::models
