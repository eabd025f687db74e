// Position encodings of HF modeling_perceiver (spec 5.1-5.4): the trainable table
// (PerceiverTrainablePositionEncoding) and the Fourier features (PerceiverFourierPositionEncoding)
// over the linspace grid of an input, or over subsampled output points of a decoder.
#pragma once

#include <cstdint>
#include <vector>

#include "perceiver/core/random.h"
#include "perceiver/nn/module.h"

namespace perceiver::models::perceiver_io {

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
