// Augmentation: shift/flip correctness against a naive reference, determinism per seed.
#include "perceiver/data/augment.h"

#include <gtest/gtest.h>

#include <set>
#include <tuple>

#include "io_test_util.h"

namespace perceiver {
namespace {

constexpr int kH = 5, kW = 6;

std::vector<float> ramp() {
  std::vector<float> v(kH * kW);
  for (int i = 0; i < kH * kW; ++i) v[i] = 1.0f + i;
  return v;
}

std::vector<float> ref_shift(const std::vector<float>& in, int dy, int dx, bool flip) {
  std::vector<float> out(in.size(), 0.0f);
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) {
      const int sy = y - dy, sx = x - dx;
      if (sy < 0 || sy >= kH || sx < 0 || sx >= kW) continue;
      out[y * kW + x] = in[sy * kW + (flip ? kW - 1 - sx : sx)];
    }
  return out;
}

TEST(Augment, ShiftAndFlipMatchReference) {
  const std::vector<float> in = ramp();
  for (int dy = -kH - 1; dy <= kH + 1; ++dy)
    for (int dx = -kW - 1; dx <= kW + 1; ++dx) {
      std::vector<float> v = in;
      data::shift_image(v.data(), kH, kW, dy, dx);
      ASSERT_EQ(v, ref_shift(in, dy, dx, false)) << "dy " << dy << " dx " << dx;
    }
  std::vector<float> f = in;
  data::hflip_image(f.data(), kH, kW);
  EXPECT_EQ(f, ref_shift(in, 0, 0, true));
}

TEST(Augment, OutputIsAShiftedOrFlippedCopyAndCoversAllShifts) {
  const std::vector<float> in = ramp();
  data::AugmentConfig cfg;
  cfg.max_shift = 2;
  cfg.hflip = true;
  Rng rng(7);
  std::set<std::tuple<int, int, bool>> seen;
  for (int iter = 0; iter < 2000; ++iter) {
    std::vector<float> v = in;
    data::augment_image(v.data(), kH, kW, cfg, rng);
    bool matched = false;
    for (int dy = -2; dy <= 2 && !matched; ++dy)
      for (int dx = -2; dx <= 2 && !matched; ++dx)
        for (bool flip : {false, true})
          if (v == ref_shift(in, dy, dx, flip)) {
            seen.insert({dy, dx, flip});
            matched = true;
            break;
          }
    ASSERT_TRUE(matched) << "iteration " << iter << " produced no valid shift/flip";
  }
  EXPECT_EQ(seen.size(), 50u) << "every (dy, dx, flip) in [-2, 2]^2 x {0, 1} should occur";
}

TEST(Augment, RandomErasingFillsOneRectangle) {
  constexpr int64_t h = 28, w = 28;
  const std::vector<float> in(h * w, -1.0f);  // outside [0, 1]: every erased pixel is visible
  Rng rng(5);
  int erased = 0;
  for (int iter = 0; iter < 400; ++iter) {
    std::vector<float> v = in;
    data::erase_random_rectangle(v.data(), h, w, rng);
    int64_t y0 = h, y1 = -1, x0 = w, x1 = -1, n = 0;
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        if (v[y * w + x] != -1.0f) {
          ASSERT_TRUE(v[y * w + x] >= 0.0f && v[y * w + x] < 1.0f);
          y0 = std::min(y0, y), y1 = std::max(y1, y), x0 = std::min(x0, x), x1 = std::max(x1, x);
          ++n;
        }
    if (n == 0) continue;  // no try fitted (rare)
    ++erased;
    const int64_t eh = y1 - y0 + 1, ew = x1 - x0 + 1;
    EXPECT_EQ(n, eh * ew) << "a filled rectangle";
    EXPECT_GE(n, 0.02 * h * w - 2 * (eh + ew));  // area in [0.02, 0.4] of the image, up to rounding
    EXPECT_LE(n, 0.4 * h * w + 2 * (eh + ew));
  }
  EXPECT_GT(erased, 380);
  // erase_prob: about that share of the images changes, and only with erase_prob > 0
  data::AugmentConfig cfg;
  cfg.erase_prob = 0.5f;
  int changed = 0;
  for (int iter = 0; iter < 1000; ++iter) {
    std::vector<float> v = in;
    data::augment_image(v.data(), h, w, cfg, rng);
    changed += v != in;
  }
  EXPECT_NEAR(changed, 500, 60);
  cfg.erase_prob = 1.5f;
  std::vector<float> v = in;
  EXPECT_TRUE(testing::throws_error([&] { data::augment_image(v.data(), h, w, cfg, rng); }, {"erase_prob must be in [0, 1]"}));
}

TEST(Augment, DeterministicPerSeedAndNoOpByDefault) {
  Tensor batch = Tensor::empty({8, kH, kW});
  for (int b = 0; b < 8; ++b) {
    const std::vector<float> r = ramp();
    std::copy(r.begin(), r.end(), batch.f32() + b * kH * kW);
  }
  data::AugmentConfig cfg{3, true};
  auto run = [&](uint64_t seed) {
    Tensor t = batch.clone();
    Rng rng(seed);
    data::augment(t, cfg, rng);
    return t.to_vector();
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));

  Tensor t = batch.clone();
  Rng rng(1);
  const uint64_t state = rng.state();
  data::augment(t, data::AugmentConfig{}, rng);
  EXPECT_EQ(t.to_vector(), batch.to_vector());
  EXPECT_EQ(rng.state(), state) << "a no-op config must not consume random numbers";

  Tensor bad = Tensor::zeros({2, 2, 2, 2});
  EXPECT_TRUE(testing::throws_error([&] { data::augment(bad, cfg, rng); },
                                    {"[augment] expected a float32 (H, W) or (B, H, W)"}));
  Tensor img = Tensor::zeros({2, 2});
  EXPECT_TRUE(testing::throws_error([&] { data::augment(img, data::AugmentConfig{-1, false}, rng); },
                                    {"max_shift must be in [0, "}));
}

}  // namespace
}  // namespace perceiver
