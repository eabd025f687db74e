// Grey image loading: BT.601 grey, area/bilinear resize, PNG writing, clear errors.
#include "perceiver/data/image.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "io_test_util.h"
#include "perceiver/data/image_codec.h"
#include "perceiver/io/atomic_file.h"

namespace perceiver {
namespace {

using testing::TempDir;
using testing::throws_error;
using testing::write_bytes;

float luma(int r, int g, int b) { return (0.299f * r + 0.587f * g + 0.114f * b) / 255.0f; }

void write_png(const std::string& path, const std::vector<uint8_t>& px, int h, int w, int c) {
  write_bytes(path, data::encode_png(px.data(), h, w, c, path));
}

std::string fixture(const std::string& name) { return std::string(PERCEIVER_SOURCE_DIR) + "/tests/data/images/" + name; }

// A 4x4 RGB image: pixel (y, x) = (40*y + 10*x, 255 - 30*x, 17*y).
std::vector<uint8_t> rgb4x4() {
  std::vector<uint8_t> px;
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) {
      px.push_back(static_cast<uint8_t>(40 * y + 10 * x));
      px.push_back(static_cast<uint8_t>(255 - 30 * x));
      px.push_back(static_cast<uint8_t>(17 * y));
    }
  return px;
}

TEST(Image, PngGreyConversionAndResize) {
  TempDir tmp;
  const std::string p = tmp.file("rgb.png");
  const std::vector<uint8_t> px = rgb4x4();
  write_png(p, px, 4, 4, 3);

  std::vector<double> grey(16);
  for (int i = 0; i < 16; ++i) grey[i] = luma(px[3 * i], px[3 * i + 1], px[3 * i + 2]);

  const Tensor same = data::load_image_grey(p, 4, 4);
  ASSERT_EQ(same.shape(), (Shape{4, 4}));
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(same.f32()[i], grey[i], 1e-6) << i;

  // 2x2: each output pixel is the mean of a 2x2 block (area filter).
  const Tensor half = data::load_image_grey(p, 2, 2);
  ASSERT_EQ(half.shape(), (Shape{2, 2}));
  for (int oy = 0; oy < 2; ++oy)
    for (int ox = 0; ox < 2; ++ox) {
      const int b = 8 * oy + 2 * ox;
      const double ref = (grey[b] + grey[b + 1] + grey[b + 4] + grey[b + 5]) / 4;
      EXPECT_NEAR(half.f32()[2 * oy + ox], ref, 1e-6);
    }
  // 1x1: global mean. Non-integer ratio 4 -> 3 keeps the mean too (area weights sum to 1).
  double mean = 0;
  for (double g : grey) mean += g / 16;
  EXPECT_NEAR(data::load_image_grey(p, 1, 1).item(), mean, 1e-6);
  const Tensor three = data::load_image_grey(p, 3, 3);
  double mean3 = 0;
  for (float v : three.to_vector()) mean3 += v / 9;
  EXPECT_NEAR(mean3, mean, 1e-6);

  // Upscale 4 -> 8: corners keep the corner values, values stay within the input range.
  const Tensor up = data::load_image_grey(p, 8, 8);
  EXPECT_NEAR(up.f32()[0], grey[0], 1e-6);
  EXPECT_NEAR(up.f32()[63], grey[15], 1e-6);
  const double lo = *std::min_element(grey.begin(), grey.end()), hi = *std::max_element(grey.begin(), grey.end());
  for (int64_t i = 0; i < up.numel(); ++i) {
    EXPECT_GE(up.f32()[i], lo - 1e-6) << "upscaled value " << i << " below the input range";
    EXPECT_LE(up.f32()[i], hi + 1e-6) << "upscaled value " << i << " above the input range";
  }
  // Mixed: grow one axis, shrink the other.
  EXPECT_EQ(data::load_image_grey(p, 8, 2).shape(), (Shape{8, 2}));
}

TEST(Image, GreyAlphaAndJpeg) {
  // Grey + alpha PNG: alpha is ignored (decoded pixels are tested against Pillow in image_codec_test).
  const Tensor la = data::load_image_grey(fixture("grey_alpha.png"), 13, 17);
  const Tensor l = data::load_image_grey(fixture("grey.png"), 13, 17);
  EXPECT_EQ(la.to_vector(), l.to_vector());
  // A JPEG of a gradient: lossy, but close to the PNG of the same picture.
  const Tensor jpg = data::load_image_grey(fixture("rgb_444.jpg"), 13, 17);
  const Tensor png = data::load_image_grey(fixture("rgb.png"), 13, 17);
  double mean_abs = 0;
  for (int64_t i = 0; i < png.numel(); ++i) mean_abs += std::fabs(jpg.f32()[i] - png.f32()[i]) / png.numel();
  EXPECT_LT(mean_abs, 4.0 / 255);
}

TEST(Image, WritePngGreyRoundTrip) {
  TempDir tmp;
  const std::string p = tmp.file("g.png");
  Tensor img = Tensor::from_vector({2, 3}, {0.0f, 0.5f, 1.0f, 0.25f, -3.0f, 7.0f});
  data::write_png_grey(p, img);
  const std::vector<float> back = data::load_image_grey(p, 2, 3).to_vector();
  const std::vector<float> ref = {0.0f, 0.5f, 1.0f, 0.25f, 0.0f, 1.0f};
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(back[i], ref[i], 0.5 / 255 + 1e-6) << i;
  EXPECT_EQ(tmp.list(), std::vector<std::string>{"g.png"});
}

TEST(Image, Errors) {
  TempDir tmp;
  const std::string missing = tmp.file("missing.png");
  EXPECT_TRUE(throws_error([&] { data::load_image_grey(missing, 28, 28); },
                           {"[read_file] ", missing, "No such file"}));
  const std::string junk = tmp.file("junk.png");
  write_bytes(junk, "this is not an image at all");
  EXPECT_TRUE(throws_error([&] { data::load_image_grey(junk, 28, 28); },
                           {"[image] ", junk, "not a PNG, JPEG, PGM or PPM file", "74 68 69 73"}));
  const std::string empty = tmp.file("empty.png");
  write_bytes(empty, "");
  EXPECT_TRUE(throws_error([&] { data::load_image_grey(empty, 28, 28); }, {empty, "empty"}));

  // A PNG cut in half, and one with a corrupted body.
  const std::string good = tmp.file("good.png");
  const std::vector<uint8_t> px = rgb4x4();
  write_png(good, px, 4, 4, 3);
  const std::string bytes = io::read_file(good);
  const std::string cut = tmp.file("cut.png");
  write_bytes(cut, bytes.substr(0, bytes.size() / 2));
  EXPECT_TRUE(throws_error([&] { data::load_image_grey(cut, 4, 4); }, {"[image] ", cut, "invalid PNG"}));
  std::string bad = bytes;
  for (size_t i = 40; i < bad.size() - 12; ++i) bad[i] = static_cast<char>(bad[i] ^ 0xa5);
  const std::string corrupt = tmp.file("corrupt.png");
  write_bytes(corrupt, bad);
  EXPECT_TRUE(throws_error([&] { data::load_image_grey(corrupt, 4, 4); }, {"[image] ", corrupt}));

  EXPECT_TRUE(throws_error([&] { data::load_image_grey(good, 0, 28); }, {"output size", "0 x 28"}));
  EXPECT_TRUE(throws_error([&] { data::resize_grey(Tensor::zeros({2, 2, 2}), 1, 1); },
                           {"[resize_grey] expected a float32 (H, W)"}));
}

}  // namespace
}  // namespace perceiver
