// Trainable and Fourier position encodings (HF modeling_perceiver, spec 5.1-5.4).
#include "perceiver/models/perceiver_io/position_encoding.h"

#include <cmath>

#include "perceiver/autograd/functions.h"
#include "perceiver/models/perceiver_io/tensor_ops.h"
#include "perceiver/nn/layers.h"

namespace perceiver::models::perceiver_io {

std::vector<float> torch_linspace(float start, float end, int64_t steps) {
  check(steps >= 0, "[linspace] steps must be >= 0, got ", steps);
  std::vector<float> out(static_cast<size_t>(steps));
  if (steps == 1) out[0] = start;
  if (steps <= 1) return out;
  const float step = (end - start) / static_cast<float>(steps - 1);
  const int64_t halfway = steps / 2;
  // start + step * i (first half) or end - step * (steps - 1 - i), each one fused operation
  const auto fused = [&](int64_t i) {
    return i < halfway ? std::fma(step, static_cast<float>(i), start)
                       : std::fma(-step, static_cast<float>(steps - 1 - i), end);
  };
  constexpr int64_t kVec = 8;  // Vectorized<float> width of the AVX2 kernels
  int64_t i = 0;
  // cpu_serial_kernel_vec: two vectors per iteration while 16 elements remain
  for (; i + 2 * kVec <= steps; i += 2 * kVec)
    for (int64_t v = i; v < i + 2 * kVec; v += kVec) {
      // Vectorized<float>::arange(base, step) = (base, base + step, base + 2 * step, ...)
      const float base = fused(v);
      out[v] = base;
      for (int64_t k = 1; k < kVec; ++k) {
        // k * step rounded before the add; volatile keeps the compiler from fusing the two
        volatile float offset = static_cast<float>(k) * step;
        out[v + k] = base + offset;
      }
    }
  // the remaining < 16 elements one by one
  for (; i < steps; ++i) out[i] = fused(i);
  return out;
}

Tensor linear_position_grid(const std::vector<int64_t>& dims) {
  check(!dims.empty(), "[linear_position_grid] needs at least one dimension");
  for (int64_t d : dims) check(d > 0, "[linear_position_grid] dimensions must be positive, got ", d);
  const int64_t nd = static_cast<int64_t>(dims.size()), total = shape_numel(dims);
  std::vector<std::vector<float>> axes;
  for (int64_t d : dims) axes.push_back(torch_linspace(-1.0f, 1.0f, d));
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

Tensor generate_fourier_features(const Tensor& pos, int64_t num_bands, const std::vector<int64_t>& max_resolution,
                                 bool concat_pos, bool sine_only) {
  check(pos.rank() == 2, "[fourier] positions must be (T, d), got ", shape_str(pos.shape()));
  const int64_t tokens = pos.dim(0), d = pos.dim(1);
  check(static_cast<int64_t>(max_resolution.size()) == d, "[fourier] max_resolution has ", max_resolution.size(),
        " entries, the positions have ", d, " dims");
  check(num_bands >= 1, "[fourier] num_bands must be >= 1, got ", num_bands);
  // freq_bands[k] = linspace(1.0, max_resolution[k] / 2, num_bands)
  std::vector<std::vector<float>> freqs;
  for (int64_t r : max_resolution)
    freqs.push_back(torch_linspace(1.0f, static_cast<float>(static_cast<double>(r) / 2.0), num_bands));
  const int64_t dk = d * num_bands, width = (concat_pos ? d : 0) + dk * (sine_only ? 1 : 2);
  const float pi = static_cast<float>(M_PI);
  Tensor out = Tensor::empty({tokens, width});
  const float* p = pos.f32();
  for (int64_t t = 0; t < tokens; ++t) {
    float* row = out.f32() + t * width;
    if (concat_pos)
      for (int64_t k = 0; k < d; ++k) row[k] = p[t * d + k];
    float* sin_block = row + (concat_pos ? d : 0);
    float* cos_block = sin_block + dk;
    for (int64_t k = 0; k < d; ++k)
      for (int64_t b = 0; b < num_bands; ++b) {
        const float u = p[t * d + k] * freqs[k][b];  // per_pos_features, one rounding
        const float arg = pi * u;                    // np.pi * per_pos_features, a second one
        sin_block[k * num_bands + b] = std::sin(arg);
        if (!sine_only) cos_block[k * num_bands + b] = std::cos(arg);
      }
  }
  return out;
}

int64_t FourierSpec::output_size() const {
  return (concat_pos ? num_dimensions() : 0) + num_dimensions() * num_bands * (sine_only ? 1 : 2);
}

Tensor FourierSpec::grid(const std::vector<int64_t>& index_dims) const {
  check(static_cast<int64_t>(index_dims.size()) == num_dimensions(), "[fourier] the input has ",
        index_dims.size(), " index dims, the encoding was built for ", num_dimensions(),
        " (max_resolution ", shape_str(max_resolution), ")");
  // build_linear_positions + generate_fourier_features
  return generate_fourier_features(linear_position_grid(index_dims), num_bands, max_resolution, concat_pos, sine_only);
}

Tensor FourierSpec::at_points(const std::vector<int64_t>& points, const std::vector<int64_t>& index_dims) const {
  check(static_cast<int64_t>(index_dims.size()) == num_dimensions(), "[fourier] output index dims ",
        shape_str(index_dims), " do not match the encoding's max_resolution ", shape_str(max_resolution));
  return generate_fourier_features(subsampled_positions(points, index_dims), num_bands, max_resolution, concat_pos,
                                   sine_only);
}

Tensor subsampled_positions(const std::vector<int64_t>& points, const std::vector<int64_t>& index_dims) {
  check(!points.empty(), "[subsampled_positions] needs at least one point");
  const int64_t d = static_cast<int64_t>(index_dims.size());
  const int64_t total = shape_numel(index_dims);
  Tensor pos = Tensor::empty({static_cast<int64_t>(points.size()), d});
  float* p = pos.f32();
  for (size_t i = 0; i < points.size(); ++i) {
    // np.unravel_index (C order), then pos = -1 + 2 * pos / index_dims in float32
    check(points[i] >= 0 && points[i] < total, "[subsampled_positions] point ", points[i],
          " is outside the output grid ", shape_str(index_dims), " (", total, " points)");
    int64_t rest = points[i];
    for (int64_t k = d - 1; k >= 0; --k) {
      const int64_t coord = rest % index_dims[k];
      rest /= index_dims[k];
      const float ratio = static_cast<float>(2 * coord) / static_cast<float>(index_dims[k]);
      p[static_cast<int64_t>(i) * d + k] = -1.0f + ratio;
    }
  }
  return pos;
}

TrainablePositionEncoding::TrainablePositionEncoding(int64_t index_dim, int64_t channels, Rng& rng) {
  check(index_dim > 0 && channels > 0, "[TrainablePositionEncoding] sizes must be positive, got (",
        index_dim, ", ", channels, ")");
  // HF: nn.Parameter(torch.randn(index_dim, num_channels)), re-drawn N(0, initializer_range).
  table_ = register_parameter("position_embeddings", nn::init_truncated_normal({index_dim, channels}, 0.02f, rng));
}

// position_embeddings.expand(batch_size, -1, -1)
Tensor TrainablePositionEncoding::forward(int64_t batch) const { return ag::expand_leading(table_, batch); }

Tensor TrainablePositionEncoding::rows(int64_t batch, const std::vector<int64_t>& points) const {
  return ag::expand_leading(gather_rows(table_, points), batch);
}

}  // namespace perceiver::models::perceiver_io
