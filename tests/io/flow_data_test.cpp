// Optical-flow data on the committed fixtures (tests/data/flow, written by
// tools/make_flow_fixtures.py): the synthetic pair generator (deterministic, exact ground truth:
// warping frame 2 back with the flow gives frame 1; pure background translation gives a constant
// flow; no motion gives identical frames), FlyingChairs-layout folders (listing, reading, writing,
// malformed folders and files), and the end-point-error statistics.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "perceiver/core/error.h"
#include "perceiver/data/flow_synth.h"
#include "perceiver/data/optical_flow.h"
#include "io_test_util.h"

namespace perceiver {
namespace {

std::string fixture(const std::string& name) {
  return (std::filesystem::path(PERCEIVER_SOURCE_DIR) / "tests/data/flow" / name).string();
}

template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const data::FlowAssets& assets() {
  static const data::FlowAssets a = data::load_flow_assets(fixture("assets"));
  return a;
}

// Bilinear sample of channel c of an RGB image at (x, y); false outside.
bool sample(const data::RgbImage& img, double x, double y, int c, double& v) {
  if (x < 0 || y < 0 || x > img.width - 1 || y > img.height - 1) return false;
  const int64_t x0 = std::min<int64_t>(static_cast<int64_t>(x), img.width - 2),
                y0 = std::min<int64_t>(static_cast<int64_t>(y), img.height - 2);
  const double fx = x - x0, fy = y - y0;
  v = (1 - fy) * ((1 - fx) * img.at(y0, x0, c) + fx * img.at(y0, x0 + 1, c)) +
      fy * ((1 - fx) * img.at(y0 + 1, x0, c) + fx * img.at(y0 + 1, x0 + 1, c));
  return true;
}

TEST(FlowSynth, LoadsAssets) {
  EXPECT_EQ(assets().backgrounds.size(), 2u);
  ASSERT_EQ(assets().sprites.size(), 2u);
  // bar.png (12 x 20) is kept as is (under sprite_side); disc.png (24 x 24) too
  EXPECT_EQ(assets().sprites[0].height, 12);
  EXPECT_EQ(assets().sprites[0].width, 20);
  // backgrounds scaled so that the shorter side is 192
  for (const auto& b : assets().backgrounds) EXPECT_EQ(std::min(b.height, b.width), 192);
  // a smaller sprite_side shrinks by area averaging: the disc's alpha stays in [0, 1]
  data::FlowAssetOptions o;
  o.sprite_side = 6;
  const data::FlowAssets small = data::load_flow_assets(fixture("assets"), o);
  EXPECT_EQ(small.sprites[1].height, 6);
  for (float v : small.sprites[1].pixels) EXPECT_TRUE(v >= 0.0f && v <= 1.0f);
}

TEST(FlowSynth, SameGeneratorSamePair) {
  data::FlowSynthOptions o;
  o.height = 24;
  o.width = 32;
  Rng r1(5, 9), r2(5, 9), r3(6, 9);
  const data::FlowPair a = data::synthesize_flow_pair(assets(), o, r1), b = data::synthesize_flow_pair(assets(), o, r2),
                       c = data::synthesize_flow_pair(assets(), o, r3);
  EXPECT_EQ(a.frame1.pixels, b.frame1.pixels);
  EXPECT_EQ(a.frame2.pixels, b.frame2.pixels);
  EXPECT_TRUE(std::equal(a.flow.f32(), a.flow.f32() + a.flow.numel(), b.flow.f32()));
  EXPECT_NE(a.frame1.pixels, c.frame1.pixels);
  EXPECT_EQ(a.flow.shape(), (Shape{24, 32, 2}));
  EXPECT_EQ(a.visible.size(), 24u * 32u);
}

// Mean grey-level error on visible pixels of frame 2 warped back onto frame 1 by the true flow
// (first) and by zero flow (second), over pairs from generators (seed, 1), seed < 6.
std::pair<double, double> warp_errors(const data::FlowSynthOptions& o) {
  double true_err = 0, zero_err = 0;
  int64_t n = 0;
  for (uint64_t seed = 0; seed < 6; ++seed) {
    Rng rng(seed, 1);
    const data::FlowPair p = data::synthesize_flow_pair(assets(), o, rng);
    for (int64_t y = 0; y < o.height; ++y)
      for (int64_t x = 0; x < o.width; ++x) {
        const int64_t i = y * o.width + x;
        if (!p.visible[static_cast<size_t>(i)]) continue;
        const double u = p.flow.f32()[2 * i], v = p.flow.f32()[2 * i + 1];
        for (int c = 0; c < 3; ++c) {
          double warped, still;
          if (!sample(p.frame2, x + u, y + v, c, warped)) continue;
          sample(p.frame2, x, y, c, still);
          true_err += std::fabs(warped - p.frame1.at(y, x, c));
          zero_err += std::fabs(still - p.frame1.at(y, x, c));
          ++n;
        }
      }
  }
  EXPECT_GT(n, 10000);
  return {true_err / n, zero_err / n};
}

// Mean absolute difference of horizontally adjacent pixels of frame 1: local contrast.
double local_contrast(const data::FlowPair& p) {
  double sum = 0;
  for (int64_t y = 0; y < p.frame1.height; ++y)
    for (int64_t x = 0; x + 1 < p.frame1.width; ++x)
      for (int c = 0; c < 3; ++c) sum += std::fabs(p.frame1.at(y, x + 1, c) - p.frame1.at(y, x, c));
  return sum / (p.frame1.height * (p.frame1.width - 1) * 3);
}

// Warping frame 2 back with the true flow reproduces frame 1 on visible pixels (up to the
// resampling of both frames), far better than with zero flow.
TEST(FlowSynth, GroundTruthWarpsFrame2OntoFrame1) {
  data::FlowSynthOptions o;
  o.height = 48;
  o.width = 48;
  const auto [true_err, zero_err] = warp_errors(o);
  EXPECT_LT(true_err, 4.0) << "mean grey-level error of the warp with the true flow";
  EXPECT_LT(true_err, 0.4 * zero_err) << "zero flow: " << zero_err;
}

// The texture moves with its layer: the same draws give the same layout, flow and visibility;
// the frames gain local contrast; the true flow still warps frame 2 onto frame 1.
TEST(FlowSynth, TextureMovesWithItsLayer) {
  data::FlowSynthOptions plain;
  plain.height = 48;
  plain.width = 48;
  data::FlowSynthOptions textured = plain;
  textured.texture = 0.5f;
  Rng r1(7, 1), r2(7, 1);
  const data::FlowPair a = data::synthesize_flow_pair(assets(), plain, r1), b = data::synthesize_flow_pair(assets(), textured, r2);
  EXPECT_TRUE(std::equal(a.flow.f32(), a.flow.f32() + a.flow.numel(), b.flow.f32()));
  EXPECT_EQ(a.visible, b.visible);
  EXPECT_NE(a.frame1.pixels, b.frame1.pixels);
  EXPECT_GT(local_contrast(b), 2 * local_contrast(a));
  const auto [true_err, zero_err] = warp_errors(textured);
  EXPECT_LT(true_err, 5.0) << "mean grey-level error of the warp with the true flow";
  EXPECT_LT(true_err, 0.2 * zero_err) << "zero flow: " << zero_err;
  // a full texture hides the photographs: inverted backgrounds give the same frames (and half a
  // texture does not)
  data::FlowAssets inverted = assets();
  for (auto& b : inverted.backgrounds)
    for (auto& v : b.pixels) v = static_cast<uint8_t>(255 - v);
  const auto frames_equal = [&](float texture) {
    textured.texture = texture;
    Rng r3(8, 1), r4(8, 1);
    const data::FlowPair x = data::synthesize_flow_pair(assets(), textured, r3),
                         y = data::synthesize_flow_pair(inverted, textured, r4);
    return x.frame1.pixels == y.frame1.pixels && x.frame2.pixels == y.frame2.pixels;
  };
  EXPECT_TRUE(frames_equal(1.0f));
  EXPECT_FALSE(frames_equal(0.5f));
}

TEST(FlowSynth, BackgroundTranslationGivesAConstantFlow) {
  data::FlowSynthOptions o;
  o.height = 20;
  o.width = 28;
  o.min_sprites = o.max_sprites = 0;
  o.background_rotation = o.background_scale = 0;
  o.background_translation = 5;
  Rng rng(3, 3);
  const data::FlowPair p = data::synthesize_flow_pair(assets(), o, rng);
  const float u = p.flow.f32()[0], v = p.flow.f32()[1];
  EXPECT_LE(std::fabs(u), 5.0f);
  EXPECT_LE(std::fabs(v), 5.0f);
  EXPECT_GT(std::fabs(u) + std::fabs(v), 0.0f);
  for (int64_t i = 0; i < 20 * 28; ++i) {
    EXPECT_NEAR(p.flow.f32()[2 * i], u, 1e-4);
    EXPECT_NEAR(p.flow.f32()[2 * i + 1], v, 1e-4);
  }
}

TEST(FlowSynth, NoMotionGivesIdenticalFramesAndZeroFlow) {
  data::FlowSynthOptions o;
  o.height = o.width = 32;
  o.background_translation = o.background_rotation = o.background_scale = 0;
  o.sprite_translation = o.sprite_rotation = o.sprite_scale = 0;
  Rng rng(11, 2);
  const data::FlowPair p = data::synthesize_flow_pair(assets(), o, rng);
  EXPECT_EQ(p.frame1.pixels, p.frame2.pixels);
  for (int64_t i = 0; i < p.flow.numel(); ++i) EXPECT_NEAR(p.flow.f32()[i], 0.0f, 1e-4);
  EXPECT_TRUE(std::all_of(p.visible.begin(), p.visible.end(), [](uint8_t v) { return v == 1; }));
}

TEST(FlowSynth, RejectsBadAssetsAndOptions) {
  testing::TempDir tmp;
  EXPECT_NE(error_of([&] { data::load_flow_assets(tmp.dir() + "/none"); }).find("backgrounds"), std::string::npos);
  std::filesystem::create_directories(tmp.dir() + "/a/backgrounds");
  std::filesystem::create_directories(tmp.dir() + "/a/sprites");
  std::filesystem::copy(fixture("assets/backgrounds/grey.png"), tmp.dir() + "/a/backgrounds/grey.png");
  EXPECT_NE(error_of([&] { data::load_flow_assets(tmp.dir() + "/a"); }).find("no .png or .jpg RGBA sprites"), std::string::npos);
  {  // a file that is not an image: the error names it
    std::FILE* f = std::fopen((tmp.dir() + "/a/sprites/broken.png").c_str(), "wb");
    std::fputs("not a png", f);
    std::fclose(f);
  }
  EXPECT_NE(error_of([&] { data::load_flow_assets(tmp.dir() + "/a"); }).find("broken.png"), std::string::npos);
  data::FlowSynthOptions o;
  o.min_sprites = 5;
  o.max_sprites = 2;
  EXPECT_NE(error_of([&] { data::check_flow_synth_options(o); }).find("min_sprites"), std::string::npos);
  o = {};
  o.sprite_scale = 0.7f;
  EXPECT_NE(error_of([&] { data::check_flow_synth_options(o); }).find("sprite_scale"), std::string::npos);
  o = {};
  o.height = 0;
  EXPECT_NE(error_of([&] { data::check_flow_synth_options(o); }).find("frame size"), std::string::npos);
  o = {};
  o.texture = 1.5f;
  EXPECT_NE(error_of([&] { data::check_flow_synth_options(o); }).find("texture must be in [0, 1]"), std::string::npos);
  o = {};
  o.texture_cell = 0.1f;
  EXPECT_NE(error_of([&] { data::check_flow_synth_options(o); }).find("texture_cell"), std::string::npos);
}

TEST(FlowFolder, ListsAndReadsPairs) {
  const std::vector<data::FlowPairFiles> pairs = data::list_flow_pairs(fixture("pairs"));
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].name, "a");
  EXPECT_EQ(pairs[1].name, "b");
  const data::FlowExample a = data::read_flow_pair(pairs[0]);
  EXPECT_EQ(a.frame1.height, 20);
  EXPECT_EQ(a.frame1.width, 24);
  EXPECT_EQ(a.flow.shape(), (Shape{20, 24, 2}));
  EXPECT_EQ(a.flow.f32()[0], 2.0f);
  EXPECT_EQ(a.flow.f32()[1], -1.0f);
  // the fixture's flow is exact: frame 2 at p + (2, -1) is frame 1 at p
  for (int64_t y = 1; y < 20; ++y)
    for (int64_t x = 0; x + 2 < 24; ++x)
      for (int c = 0; c < 3; ++c) ASSERT_EQ(a.frame2.at(y - 1, x + 2, c), a.frame1.at(y, x, c));
}

TEST(FlowFolder, WriteReadRoundTrip) {
  testing::TempDir tmp;
  const data::FlowExample a = data::read_flow_pair(data::list_flow_pairs(fixture("pairs"))[1]);
  data::write_flow_pair(tmp.dir(), "copy", a.frame1, a.frame2, a.flow);
  const std::vector<data::FlowPairFiles> back = data::list_flow_pairs(tmp.dir());
  ASSERT_EQ(back.size(), 1u);
  const data::FlowExample b = data::read_flow_pair(back[0]);
  EXPECT_EQ(a.frame1.pixels, b.frame1.pixels);
  EXPECT_EQ(a.frame2.pixels, b.frame2.pixels);
  EXPECT_TRUE(std::equal(a.flow.f32(), a.flow.f32() + a.flow.numel(), b.flow.f32()));
}

TEST(FlowFolder, RejectsMalformedFolders) {
  testing::TempDir tmp;
  EXPECT_NE(error_of([&] { data::list_flow_pairs(tmp.dir() + "/none"); }).find("expected a folder"), std::string::npos);
  EXPECT_NE(error_of([&] { data::list_flow_pairs(tmp.dir()); }).find("no pairs found"), std::string::npos);
  {  // two first frames of one pair
    std::filesystem::create_directories(tmp.dir() + "/dup");
    for (const char* f : {"a_img1.png", "a_img2.png", "a_flow.flo"})
      std::filesystem::copy(fixture(std::string("pairs/") + f), tmp.dir() + "/dup/" + f);
    std::filesystem::copy(fixture("pairs/a_img1.png"), tmp.dir() + "/dup/a_img1.jpg");
    const std::string dup = error_of([&] { data::list_flow_pairs(tmp.dir() + "/dup"); });
    EXPECT_NE(dup.find("has two img1 files"), std::string::npos) << dup;
  }
  const std::string missing = error_of([&] { data::list_flow_pairs(fixture("bad/missing_flow")); });
  EXPECT_NE(missing.find("x_flow.flo"), std::string::npos) << missing;
  const std::string truncated =
      error_of([&] { data::read_flow_pair(data::list_flow_pairs(fixture("bad/truncated_flo"))[0]); });
  EXPECT_NE(truncated.find("x_flow.flo"), std::string::npos) << truncated;
  const std::string mismatch =
      error_of([&] { data::read_flow_pair(data::list_flow_pairs(fixture("bad/size_mismatch"))[0]); });
  EXPECT_NE(mismatch.find("8 x 8 flow for 20 x 24 frames"), std::string::npos) << mismatch;
}

TEST(FlowErrors, CountsKnownPixelsOnly) {
  // errors 5 (3-4-5), 0.5, 2; the fourth target unknown
  Tensor pred = Tensor::from_vector({1, 2, 2, 2}, {3, 4, 0.5f, 0, 2, 0, 7, 7});
  Tensor gt = Tensor::from_vector({1, 2, 2, 2}, {0, 0, 0, 0, 0, 0, 1e10f, 0});
  data::FlowErrors e;
  data::add_flow_errors(pred, gt, e);
  EXPECT_EQ(e.pairs, 1);
  EXPECT_EQ(e.known, 3);
  EXPECT_NEAR(e.epe(), 7.5 / 3, 1e-6);
  EXPECT_EQ(e.under1, 1);
  EXPECT_EQ(e.under3, 2);
  data::FlowErrors f;
  pred.f32()[0] = NAN;  // a non-finite prediction on a known pixel is an infinite error
  data::add_flow_errors(pred, gt, f);
  EXPECT_TRUE(std::isinf(f.epe()));
  e.merge(f);
  EXPECT_EQ(e.pairs, 2);
  EXPECT_EQ(e.known, 6);
  EXPECT_NE(error_of([&] { data::add_flow_errors(pred, Tensor::zeros({1, 2, 2, 3}), e); }).find("(..., H, W, 2)"),
            std::string::npos);
}

}  // namespace
}  // namespace perceiver
