// Trainable and Fourier position encodings (HF modeling_perceiver, spec 5.1-5.4).
#include "perceiver/models/perceiver_io/position_encoding.h"

#include "perceiver/autograd/functions.h"
#include "perceiver/models/fourier.h"
#include "perceiver/models/perceiver_io/tensor_ops.h"
#include "perceiver/nn/layers.h"

namespace perceiver::models::perceiver_io {

int64_t FourierSpec::output_size() const {
  return fourier_feature_width(num_dimensions(), num_bands, concat_pos, sine_only);
}

Tensor FourierSpec::grid(const std::vector<int64_t>& index_dims) const {
  check(static_cast<int64_t>(index_dims.size()) == num_dimensions(), "[fourier] the input has ",
        index_dims.size(), " index dims, the encoding was built for ", num_dimensions(),
        " (max_resolution ", shape_str(max_resolution), ")");
  // build_linear_positions + generate_fourier_features
  return fourier_features(linear_positions(index_dims), num_bands, max_resolution, concat_pos, sine_only);
}

Tensor FourierSpec::at_points(const std::vector<int64_t>& points, const std::vector<int64_t>& index_dims) const {
  check(static_cast<int64_t>(index_dims.size()) == num_dimensions(), "[fourier] output index dims ",
        shape_str(index_dims), " do not match the encoding's max_resolution ", shape_str(max_resolution));
  return fourier_features(subsampled_positions(points, index_dims), num_bands, max_resolution, concat_pos,
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
