// PNG (libpng) and JPEG (libjpeg-turbo) decoding: every kind of file decodes to exactly what
// Pillow's convert("RGB") gives (tests/data/images, made by tools/make_image_fixtures.py); size
// limits act from the header before any pixel buffer exists; other formats, truncated and hostile
// files are clean errors.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>

#include "io_test_util.h"
#include "perceiver/data/image_codec.h"
#include "perceiver/data/image_processor.h"
#include "perceiver/io/atomic_file.h"
#include "perceiver/io/safetensors.h"

namespace perceiver {
namespace {

using testing::throws_error;

std::string fixture(const std::string& name) { return std::string(PERCEIVER_SOURCE_DIR) + "/tests/data/images/" + name; }

const std::map<std::string, Tensor>& pillow() {
  static const std::map<std::string, Tensor> t = io::load_safetensors(fixture("pillow_rgb.safetensors")).tensors;
  return t;
}

TEST(ImageCodec, EveryFixtureDecodesExactlyAsPillow) {
  ASSERT_GE(pillow().size(), 15u);
  for (const auto& [name, want] : pillow()) {
    SCOPED_TRACE(name);
    const data::RgbImage got = data::load_image_rgb(fixture(name));
    ASSERT_EQ(got.height, want.dim(0));
    ASSERT_EQ(got.width, want.dim(1));
    int64_t differ = 0, worst = 0, worst_at = -1;
    for (int64_t i = 0; i < want.numel(); ++i) {
      const int64_t d = std::abs(int64_t(got.pixels[static_cast<size_t>(i)]) - int64_t(want.data<int32_t>()[i]));
      differ += d != 0;
      if (d > worst) worst = d, worst_at = i;
    }
    EXPECT_EQ(differ, 0) << "worst |difference| " << worst << " at element " << worst_at;
  }
}

TEST(ImageCodec, HeaderGivesSizeAndChannels) {
  const std::pair<const char*, int> cases[] = {{"rgb.png", 3},      {"grey.png", 1},       {"grey_alpha.png", 1},
                                               {"bilevel.png", 1},  {"palette_trns.png", 3}, {"rgba.png", 3},
                                               {"grey.jpg", 1},     {"rgb_420.jpg", 3},     {"cmyk.jpg", 3},
                                               {"rgb_interlaced.png", 3}};
  for (const auto& [name, channels] : cases) {
    const data::ImageHeader h = data::read_image_header(io::read_file(fixture(name)), name);
    EXPECT_EQ(h.height, 13) << name;
    EXPECT_EQ(h.width, 17) << name;
    EXPECT_EQ(h.channels, channels) << name;
    const data::DecodedImage d = data::decode_image(io::read_file(fixture(name)), name);
    EXPECT_EQ(d.channels, channels) << name;
    EXPECT_EQ(d.pixels.size(), size_t(13 * 17 * channels)) << name;
  }
}

TEST(ImageCodec, PixelLimitActsBeforeDecoding) {
  for (const char* name : {"rgb.png", "rgb_420.jpg", "progressive.jpg"}) {
    const std::string bytes = io::read_file(fixture(name));
    EXPECT_NO_THROW(data::decode_image(bytes, name, 13 * 17));
    EXPECT_TRUE(throws_error([&] { data::decode_image(bytes, name, 13 * 17 - 1); },
                             {"[image] ", name, "17 x 13 = 221 pixels exceeds the limit of 220 pixels"}));
  }
  // A PNG whose header claims 60000 x 60000 (3.6 gigapixels) with no pixel data: refused at once
  // from the header (decoding would allocate 10.8 GB).
  std::string png = io::read_file(fixture("rgb.png"));
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) png[at + i] = static_cast<char>((v >> (24 - 8 * i)) & 0xFF);
  };
  put32(16, 60000);
  put32(20, 60000);
  uint32_t crc = 0xFFFFFFFFu;  // the IHDR CRC over type + data, so libpng accepts the header
  for (size_t i = 12; i < 29; ++i) {
    crc ^= static_cast<uint8_t>(png[i]);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  put32(29, ~crc);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(throws_error([&] { data::decode_image(png, "huge.png"); },
                           {"60000 x 60000 = 3600000000 pixels exceeds the limit of 100000000"}));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.0);
  EXPECT_TRUE(throws_error([&] { data::decode_image(io::read_file(fixture("rgb.png")), "x", 0); }, {"must be positive"}));
}

TEST(ImageCodec, OtherFormatsTruncatedAndCorruptFilesAreErrors) {
  EXPECT_TRUE(throws_error([] { data::decode_image(std::string("BM\x36\x00\x00\x00", 6), "a.bmp"); },
                           {"[image] a.bmp: not a PNG or JPEG file (first bytes: 42 4d 36 00 00 00)", "convert"}));
  EXPECT_TRUE(throws_error([] { data::decode_image("GIF89a....", "a.gif"); }, {"not a PNG or JPEG"}));
  EXPECT_TRUE(throws_error([] { data::decode_image("", "e.png"); }, {"file is empty"}));
  for (const char* name : {"rgb.png", "rgb_420.jpg", "progressive.jpg", "rgb_interlaced.png"}) {
    const std::string bytes = io::read_file(fixture(name));
    for (size_t keep : {size_t(4), size_t(30), bytes.size() / 2, bytes.size() - 3}) {
      const std::string cut = bytes.substr(0, keep);
      EXPECT_TRUE(throws_error([&] { data::decode_image(cut, name); }, {"[image] ", name}))
          << name << " cut to " << keep << " bytes";
    }
  }
}

// A progressive JPEG whose last scan is repeated 600 times: libjpeg only warns about the bogus
// progression, so without a scan limit such a file costs unbounded CPU.
TEST(ImageCodec, ProgressiveScanLimit) {
  const std::string jpg = io::read_file(fixture("progressive.jpg"));
  size_t last_sos = std::string::npos;
  for (size_t i = 2; i + 1 < jpg.size(); ++i)
    if (static_cast<uint8_t>(jpg[i]) == 0xFF && static_cast<uint8_t>(jpg[i + 1]) == 0xDA) last_sos = i;
  ASSERT_NE(last_sos, std::string::npos);
  const size_t eoi = jpg.size() - 2;
  ASSERT_EQ(static_cast<uint8_t>(jpg[eoi + 1]), 0xD9);
  const std::string scan = jpg.substr(last_sos, eoi - last_sos);
  std::string many = jpg.substr(0, eoi);
  for (int i = 0; i < 600; ++i) many += scan;
  many += jpg.substr(eoi);
  EXPECT_TRUE(throws_error([&] { data::decode_image(many, "scans.jpg"); }, {"more than 500 scans"}));
  std::string few = jpg.substr(0, eoi);
  for (int i = 0; i < 5; ++i) few += scan;
  few += jpg.substr(eoi);
  EXPECT_NO_THROW(data::decode_image(few, "few.jpg"));
}

TEST(ImageCodec, HostileFilesFromTheFuzzingCampaignAreCleanErrors) {
  const std::string dir = std::string(PERCEIVER_SOURCE_DIR) + "/tests/fuzz/regressions/image";
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string path = e.path().string();
    EXPECT_TRUE(throws_error([&] { data::load_image_rgb(path); }, {"[image] ", path})) << path;
    ++n;
  }
  EXPECT_GE(n, 5);
}

TEST(ImageCodec, PngEncodeRoundTrips) {
  std::vector<uint8_t> px(7 * 5 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 37 + 11);
  for (int c : {1, 3}) {
    const std::vector<uint8_t> in(px.begin(), px.begin() + 7 * 5 * c);
    const data::DecodedImage d = data::decode_image(data::encode_png(in.data(), 7, 5, c, "t"), "t");
    EXPECT_EQ(d.channels, c);
    EXPECT_EQ(d.height, 7);
    EXPECT_EQ(d.width, 5);
    EXPECT_EQ(d.pixels, in);
  }
  EXPECT_TRUE(throws_error([&] { data::encode_png(px.data(), 7, 5, 2, "t"); }, {"1 or 3 channels"}));
}

}  // namespace
}  // namespace perceiver
