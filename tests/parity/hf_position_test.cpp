// Position grids and Fourier features against the reference encoder inputs: the raw positions
// (concat_pos) must be bit-identical and every sine/cosine within 2 float32 ulps of 1, which
// holds only with PyTorch's own linspace rounding (frequencies are up to max_resolution / 2).
#include "parity/hf_parity_util.h"
#include "perceiver/models/perceiver_io/position_encoding.h"

namespace perceiver {
namespace {

using models::perceiver_io::FourierSpec;

struct Case {
  const char* family;
  int64_t token0, tokens, channel0;  // where the position features sit in encoder_input
  std::vector<int64_t> index_dims;
  FourierSpec spec;
};

TEST(HfPositions, FourierFeaturesMatchTheReference) {
  const Case cases[] = {
      {"vision-perceiver-fourier", 0, 60, 3, {6, 10}, {64, {224, 224}, true, false}},
      {"vision-perceiver-conv", 0, 35, 64, {5, 7}, {64, {56, 56}, true, false}},
      {"optical-flow-perceiver", 0, 60, 64, {6, 10}, {64, {6, 10}, true, false}},
      {"multimodal-perceiver", 0, 8, 16, {8}, {192, {128}, true, false}},
      {"multimodal-perceiver", 8, 64, 48, {4, 4, 4}, {32, {4, 4, 4}, true, false}},
  };
  for (const Case& c : cases) {
    const Tensor ref = io::load_safetensors(testing::hf_fixture_dir(c.family) + "/outputs.safetensors")
                           .tensors.at("encoder_input");
    const Tensor got = c.spec.grid(c.index_dims);  // (tokens, F)
    ASSERT_EQ(got.dim(0), c.tokens);
    const int64_t d = c.spec.num_dimensions(), width = got.dim(1), channels = ref.dim(2);
    for (int64_t b = 0; b < ref.dim(0); ++b)
      for (int64_t t = 0; t < c.tokens; ++t) {
        const float* r = ref.f32() + ((b * ref.dim(1)) + c.token0 + t) * channels + c.channel0;
        const float* g = got.f32() + t * width;
        for (int64_t k = 0; k < d; ++k) ASSERT_EQ(g[k], r[k]) << c.family << " position " << t << "," << k;
        for (int64_t k = d; k < width; ++k)
          ASSERT_NEAR(g[k], r[k], 2.4e-7) << c.family << " token " << t << " feature " << k;
      }
  }
}

TEST(HfPositions, LinspaceFollowsTheReferenceKernel) {
  // Fused first/second half formulas; blocks of 8 from a fused base plus k * step.
  const std::vector<float> v = models::perceiver_io::torch_linspace(1.0f, 64.0f, 192);
  ASSERT_EQ(v.size(), 192u);
  EXPECT_EQ(v.front(), 1.0f);
  EXPECT_EQ(v.back(), 64.0f);
  const float step = 63.0f / 191.0f;
  for (int64_t i = 0; i < 192; i += 8) {
    const float base = i < 96 ? std::fma(step, float(i), 1.0f) : std::fma(-step, float(191 - i), 64.0f);
    for (int64_t k = 0; k < 8; ++k) {
      volatile float offset = float(k) * step;  // not fused with the add
      EXPECT_EQ(v[i + k], k == 0 ? base : base + offset) << i + k;
    }
  }
  const std::vector<float> tail = models::perceiver_io::torch_linspace(-1.0f, 1.0f, 20);
  EXPECT_EQ(tail[19], 1.0f);
  EXPECT_EQ(tail[18], std::fma(-2.0f / 19.0f, 1.0f, 1.0f));
  EXPECT_EQ(models::perceiver_io::torch_linspace(3.0f, 5.0f, 1), std::vector<float>{3.0f});
}

}  // namespace
}  // namespace perceiver
