// Position features for grid inputs, after HF build_linear_positions and
// generate_fourier_features (spec 5.2-5.3): coordinates on linspace(-1, 1) per axis ("ij" grid,
// first axis slowest), frequencies linspace(1, r/2, K) per axis, layout [pos, sin(pi u), cos(pi u)].
#pragma once

#include <vector>

#include "perceiver/core/tensor.h"

namespace perceiver::models {

// float32 linspace with the symmetric formula (start + step*i for the first half,
// end - step*(n-1-i) for the second), as recent PyTorch.
std::vector<float> linspace(float start, float end, int64_t n);

// (prod(dims), len(dims)) coordinates in [-1, 1].
Tensor linear_positions(const std::vector<int64_t>& dims);

// pos (T, d) -> (T, [d] + d*K [+ d*K]) features. max_resolution has d entries.
Tensor fourier_features(const Tensor& pos, int64_t num_bands,
                        const std::vector<int64_t>& max_resolution, bool concat_pos,
                        bool sine_only);

// Width of fourier_features' output.
int64_t fourier_feature_width(int64_t dims, int64_t num_bands, bool concat_pos, bool sine_only);

}  // namespace perceiver::models
