// Position encodings of HF modeling_perceiver (spec 5.1-5.4): the trainable table
// (PerceiverTrainablePositionEncoding) and the Fourier features (PerceiverFourierPositionEncoding)
// over the linspace grid of an input, or over subsampled output points of a decoder.
#pragma once

#include <cstdint>
#include <vector>

#include "perceiver/core/random.h"
#include "perceiver/nn/module.h"

namespace perceiver::models::perceiver_io {

// torch.linspace(start, end, steps) in float32 exactly as the PyTorch CPU kernel that produced
// the reference computes it (1.13, AVX2 build; spec 5.3): step = (end - start) / (steps - 1);
// elements go in blocks of 16 = two 8-wide vectors, each vector from a base
// fma(step, i, start) (first half) or fma(-step, steps - 1 - i, end) (second half, chosen by
// the vector's first index) plus k * step rounded separately; the tail is element-wise with the
// same fused formulas. Fourier frequencies reach ~1.5e4 (audio), so one ulp here moves a
// feature by up to ~1e-3: matching the reference's rounding matters.
std::vector<float> torch_linspace(float start, float end, int64_t steps);

// Linear position grid (build_linear_positions): torch_linspace(-1, 1, n_k) per axis, "ij"
// meshgrid flattened row-major (first axis slowest): (prod(dims), len(dims)).
Tensor linear_position_grid(const std::vector<int64_t>& index_dims);

// generate_fourier_features for positions pos (T, d): [pos (concat_pos), sin(pi*u), cos(pi*u)]
// with u[k*K + b] = pos[k] * f_k[b], f_k = torch_linspace(1, max_resolution[k] / 2, K); u and
// pi*u rounded separately (float32 pi), as PyTorch.
Tensor generate_fourier_features(const Tensor& pos, int64_t num_bands, const std::vector<int64_t>& max_resolution,
                                 bool concat_pos, bool sine_only);

// generate_fourier_features settings; the frequencies come from max_resolution (the training
// resolution), the positions from the actual index dims.
struct FourierSpec {
  int64_t num_bands = 64;
  std::vector<int64_t> max_resolution{224, 224};
  bool concat_pos = true;
  bool sine_only = false;

  int64_t num_dimensions() const { return static_cast<int64_t>(max_resolution.size()); }
  // Feature width: [pos (d)] + d*K sines [+ d*K cosines].
  int64_t output_size() const;
  // Features of the linspace(-1, 1) grid over index_dims (first dim slowest): (prod, F).
  Tensor grid(const std::vector<int64_t>& index_dims) const;
  // Features of flat points into index_dims, at positions -1 + 2*coord/size (spec 5.4): (n, F).
  Tensor at_points(const std::vector<int64_t>& points, const std::vector<int64_t>& index_dims) const;
};

// Flat indices unravelled row-major into index_dims and mapped to -1 + 2*c/d: (n, len(dims)).
Tensor subsampled_positions(const std::vector<int64_t>& points, const std::vector<int64_t>& index_dims);

// A learned (index_dim, channels) table broadcast whole to the batch; parameter
// "position_embeddings" (HF PerceiverTrainablePositionEncoding).
class TrainablePositionEncoding : public nn::Module {
 public:
  TrainablePositionEncoding(int64_t index_dim, int64_t channels, Rng& rng);
  const Tensor& table() const { return table_; }  // (T, C)
  int64_t size() const { return table_.dim(0); }
  int64_t channels() const { return table_.dim(1); }
  // (B, T, C): the whole table for every batch element.
  Tensor forward(int64_t batch) const;
  // (B, n, C): rows `points` of the table.
  Tensor rows(int64_t batch, const std::vector<int64_t>& points) const;

 private:
  Tensor table_;
};

}  // namespace perceiver::models::perceiver_io
