// PNG (libpng), JPEG (libjpeg-turbo) and binary PGM/PPM decoding: every kind of file decodes to
// exactly what Pillow's convert("RGB") gives (tests/data/images, made by
// tools/make_image_fixtures.py); RGBA output keeps PNG transparency like convert("RGBA") (PNGs
// written here with libpng); PGM/PPM samples scale like Pillow's PpmDecoder; size limits act from
// the header before any pixel buffer exists; other formats, truncated, malformed and hostile files
// are clean errors.
#include <gtest/gtest.h>
#include <png.h>

#include <chrono>
#include <csetjmp>
#include <filesystem>
#include <map>
#include <optional>

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
                           {"[image] a.bmp: not a PNG, JPEG, PGM or PPM file (first bytes: 42 4d 36 00 00 00)", "convert"}));
  EXPECT_TRUE(throws_error([] { data::decode_image("GIF89a....", "a.gif"); }, {"not a PNG, JPEG, PGM or PPM"}));
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
    if (e.path().extension() == ".pgm") {
      // stb's 16-bit PNM heap overflow: a valid 2 x 2 PGM (maxval 65535, all zero), read exactly.
      const data::DecodedImage d = data::decode_image(io::read_file(path), path);
      EXPECT_EQ(d.channels, 1);
      EXPECT_EQ(d.pixels, std::vector<uint8_t>(4, 0)) << path;
    } else {
      EXPECT_TRUE(throws_error([&] { data::load_image_rgb(path); }, {"[image] ", path})) << path;
    }
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


// ---------------------------------------------------------------- RGBA

// A PNG written with libpng in memory: any colour type and bit depth, an optional palette and tRNS.
struct PngSpec {
  int width = 0, height = 0, color_type = PNG_COLOR_TYPE_RGB, bit_depth = 8;
  std::vector<png_color> palette;
  std::vector<png_byte> trns_alpha;            // palette images: the alpha of the first entries
  std::optional<png_color_16> trns_key;        // grey/RGB images: the transparent colour
  std::vector<uint8_t> rows;                   // the rows as the PNG holds them (16-bit: big-endian)
};

void append_png(png_structp png, png_bytep data, png_size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), n);
}
void flush_png(png_structp) {}

// Writes spec to *out; false when libpng reports an error (it longjmps here: no C++ objects).
bool write_png_into(png_structp png, png_infop info, const PngSpec* spec, std::string* out) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_write_fn(png, out, append_png, flush_png);
  png_set_IHDR(png, info, static_cast<png_uint_32>(spec->width), static_cast<png_uint_32>(spec->height),
               spec->bit_depth, spec->color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!spec->palette.empty())
    png_set_PLTE(png, info, spec->palette.data(), static_cast<int>(spec->palette.size()));
  if (!spec->trns_alpha.empty() || spec->trns_key)
    png_set_tRNS(png, info, spec->trns_alpha.empty() ? nullptr : spec->trns_alpha.data(),
                 static_cast<int>(spec->trns_alpha.size()), spec->trns_key ? &*spec->trns_key : nullptr);
  png_write_info(png, info);
  const size_t stride = spec->rows.size() / static_cast<size_t>(spec->height);
  for (int y = 0; y < spec->height; ++y) png_write_row(png, spec->rows.data() + static_cast<size_t>(y) * stride);
  png_write_end(png, nullptr);
  return true;
}

std::string make_png(const PngSpec& spec) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  const bool ok = write_png_into(png, info, &spec, &out);
  png_destroy_write_struct(&png, &info);
  EXPECT_TRUE(ok) << "libpng could not write the test PNG";
  return out;
}

png_color_16 colour_key(png_uint_16 red, png_uint_16 green, png_uint_16 blue, png_uint_16 grey) {
  png_color_16 key{};
  key.red = red, key.green = green, key.blue = blue, key.gray = grey;
  return key;
}

// Every pixel of a grey or RGB image with A = 255 appended (grey repeated as R, G, B).
std::vector<uint8_t> opaque(const data::DecodedImage& d) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i < static_cast<size_t>(d.height * d.width); ++i) {
    for (int c = 0; c < 3; ++c) out.push_back(d.pixels[i * static_cast<size_t>(d.channels) + (d.channels == 1 ? 0 : c)]);
    out.push_back(255);
  }
  return out;
}

TEST(ImageCodecRgba, RgbaPngRoundTrips) {
  PngSpec spec{3, 2, PNG_COLOR_TYPE_RGB_ALPHA, 8, {}, {}, {}, {}};
  for (int i = 0; i < 3 * 2 * 4; ++i) spec.rows.push_back(static_cast<uint8_t>(i * 41 + 7));
  const std::string png = make_png(spec);
  const data::DecodedImage d = data::decode_image_rgba(png, "rgba.png");
  EXPECT_EQ(d.height, 2);
  EXPECT_EQ(d.width, 3);
  EXPECT_EQ(d.channels, 4);
  EXPECT_EQ(d.pixels, spec.rows);
  // decode_image drops the alpha and keeps R, G, B.
  const data::DecodedImage rgb = data::decode_image(png, "rgba.png");
  ASSERT_EQ(rgb.channels, 3);
  for (size_t i = 0; i < 6; ++i)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(rgb.pixels[3 * i + c], spec.rows[4 * i + c]);
  // 16-bit RGBA keeps the high byte of every sample, alpha included.
  PngSpec wide{2, 1, PNG_COLOR_TYPE_RGB_ALPHA, 16, {}, {}, {}, {}};
  wide.rows = {0x12, 0x34, 0xFF, 0x01, 0x00, 0xFF, 0x80, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0xFE, 0xFF};
  EXPECT_EQ(data::decode_image_rgba(make_png(wide), "rgba16.png").pixels,
            (std::vector<uint8_t>{0x12, 0xFF, 0x00, 0x80, 0x01, 0x03, 0x05, 0xFE}));
}

TEST(ImageCodecRgba, PaletteTrnsGivesEachEntryItsAlpha) {
  // Entries 0 and 1 have tRNS alphas 0 and 128; entry 2 lies past the tRNS chunk and is opaque.
  PngSpec spec{4, 1, PNG_COLOR_TYPE_PALETTE, 8, {{10, 20, 30}, {40, 50, 60}, {70, 80, 90}}, {0, 128}, {}, {2, 1, 0, 1}};
  const data::DecodedImage d = data::decode_image_rgba(make_png(spec), "palette_trns.png");
  EXPECT_EQ(d.channels, 4);
  EXPECT_EQ(d.pixels, (std::vector<uint8_t>{70, 80, 90, 255, 40, 50, 60, 128, 10, 20, 30, 0, 40, 50, 60, 128}));
  // Without tRNS every entry is opaque.
  spec.trns_alpha.clear();
  EXPECT_EQ(data::decode_image_rgba(make_png(spec), "palette.png").pixels,
            (std::vector<uint8_t>{70, 80, 90, 255, 40, 50, 60, 255, 10, 20, 30, 255, 40, 50, 60, 255}));
}

TEST(ImageCodecRgba, GreyAlphaExpandsGreyToRgb) {
  PngSpec spec{2, 2, PNG_COLOR_TYPE_GRAY_ALPHA, 8, {}, {}, {}, {0, 255, 100, 0, 200, 17, 255, 128}};
  const std::string png = make_png(spec);
  EXPECT_EQ(data::decode_image_rgba(png, "ga.png").pixels,
            (std::vector<uint8_t>{0, 0, 0, 255, 100, 100, 100, 0, 200, 200, 200, 17, 255, 255, 255, 128}));
  const data::DecodedImage grey = data::decode_image(png, "ga.png");
  EXPECT_EQ(grey.channels, 1);
  EXPECT_EQ(grey.pixels, (std::vector<uint8_t>{0, 100, 200, 255}));
}

TEST(ImageCodecRgba, ColourKeyTrnsMakesExactlyThatColourTransparent) {
  PngSpec rgb{3, 1, PNG_COLOR_TYPE_RGB, 8, {}, {}, colour_key(10, 20, 30, 0), {10, 20, 30, 10, 20, 31, 30, 20, 10}};
  EXPECT_EQ(data::decode_image_rgba(make_png(rgb), "key.png").pixels,
            (std::vector<uint8_t>{10, 20, 30, 0, 10, 20, 31, 255, 30, 20, 10, 255}));
  PngSpec grey{3, 1, PNG_COLOR_TYPE_GRAY, 8, {}, {}, colour_key(0, 0, 0, 7), {7, 8, 6}};
  EXPECT_EQ(data::decode_image_rgba(make_png(grey), "grey_key.png").pixels,
            (std::vector<uint8_t>{7, 7, 7, 0, 8, 8, 8, 255, 6, 6, 6, 255}));
  // 16-bit: the key is compared on the full sample, before the high byte is taken.
  PngSpec grey16{2, 1, PNG_COLOR_TYPE_GRAY, 16, {}, {}, colour_key(0, 0, 0, 0x0102), {0x01, 0x02, 0x01, 0xFF}};
  EXPECT_EQ(data::decode_image_rgba(make_png(grey16), "grey16_key.png").pixels,
            (std::vector<uint8_t>{1, 1, 1, 0, 1, 1, 1, 255}));
  // decode_image drops the key.
  EXPECT_EQ(data::decode_image(make_png(rgb), "key.png").pixels, (std::vector<uint8_t>{10, 20, 30, 10, 20, 31, 30, 20, 10}));
}

TEST(ImageCodecRgba, ImagesWithoutTransparencyGetOpaqueAlpha) {
  std::vector<uint8_t> px(5 * 4 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 29 + 3);
  for (int c : {1, 3}) {
    const std::string png = data::encode_png(px.data(), 5, 4, c, "t");
    const data::DecodedImage d = data::decode_image_rgba(png, "t");
    EXPECT_EQ(d.channels, 4);
    EXPECT_EQ(d.pixels, opaque(data::decode_image(png, "t"))) << c << " channels";
  }
  // JPEG (grey, YCbCr, CMYK) and the PNG fixtures: the same R, G, B as decode_image (checked
  // against Pillow above); A = 255 unless the PNG is transparent.
  for (const char* name : {"grey.jpg", "rgb_420.jpg", "cmyk.jpg", "progressive.jpg", "rgb.png", "grey.png", "bilevel.png",
                           "grey_4bit.png", "palette.png", "rgb_interlaced.png", "rgba.png", "grey_alpha.png",
                           "palette_trns.png"}) {
    SCOPED_TRACE(name);
    const std::string bytes = io::read_file(fixture(name));
    const data::DecodedImage d = data::decode_image_rgba(bytes, name);
    ASSERT_EQ(d.channels, 4);
    ASSERT_EQ(d.height, 13);
    ASSERT_EQ(d.width, 17);
    std::vector<uint8_t> want = opaque(data::decode_image(bytes, name));
    int64_t transparent = 0;
    for (size_t i = 3; i < want.size(); i += 4) {
      transparent += d.pixels[i] != 255;
      want[i] = d.pixels[i];  // alpha compared by the count below
    }
    EXPECT_EQ(d.pixels, want);
    const std::string n = name;
    const bool has_alpha = n == "rgba.png" || n == "grey_alpha.png" || n == "palette_trns.png";
    if (has_alpha) EXPECT_GT(transparent, 0);
    else EXPECT_EQ(transparent, 0);
  }
}

TEST(ImageCodecRgba, SameLimitsAndErrors) {
  const std::string bytes = io::read_file(fixture("rgba.png"));
  EXPECT_NO_THROW(data::decode_image_rgba(bytes, "rgba.png", 13 * 17));
  EXPECT_TRUE(throws_error([&] { data::decode_image_rgba(bytes, "rgba.png", 13 * 17 - 1); },
                           {"[image] rgba.png", "221 pixels exceeds the limit of 220 pixels"}));
  EXPECT_TRUE(throws_error([&] { data::decode_image_rgba(bytes.substr(0, bytes.size() / 2), "cut.png"); },
                           {"[image] cut.png: invalid PNG"}));
  EXPECT_TRUE(throws_error([] { data::decode_image_rgba("GIF89a....", "a.gif"); }, {"not a PNG, JPEG, PGM or PPM"}));
  EXPECT_TRUE(throws_error([] { data::decode_image_rgba("", "e.png"); }, {"file is empty"}));
}

// ---------------------------------------------------------------- PGM / PPM

// A binary Netpbm file: the header text, then each sample in 1 byte (maxval < 256) or 2 big-endian.
std::string pnm(const std::string& header, const std::vector<int>& samples, int sample_bytes) {
  std::string out = header;
  for (int v : samples) {
    if (sample_bytes == 2) out += static_cast<char>((v >> 8) & 0xFF);
    out += static_cast<char>(v & 0xFF);
  }
  return out;
}

std::vector<uint8_t> bytes_of(const std::vector<int>& v) { return std::vector<uint8_t>(v.begin(), v.end()); }

TEST(ImageCodecPnm, P5EightBitIsGrey) {
  const std::string pgm = pnm("P5\n3 2\n255\n", {0, 1, 127, 128, 254, 255}, 1);
  EXPECT_EQ(data::sniff_image_format(pgm), data::ImageFormat::kPnm);
  const data::ImageHeader h = data::read_image_header(pgm, "a.pgm");
  EXPECT_EQ(h.format, data::ImageFormat::kPnm);
  EXPECT_EQ(h.height, 2);
  EXPECT_EQ(h.width, 3);
  EXPECT_EQ(h.channels, 1);
  const data::DecodedImage d = data::decode_image(pgm, "a.pgm");
  EXPECT_EQ(d.height, 2);
  EXPECT_EQ(d.width, 3);
  EXPECT_EQ(d.channels, 1);
  EXPECT_EQ(d.pixels, bytes_of({0, 1, 127, 128, 254, 255}));
  const data::DecodedImage rgba = data::decode_image_rgba(pgm, "a.pgm");
  EXPECT_EQ(rgba.channels, 4);
  EXPECT_EQ(rgba.pixels, opaque(d));
  // Bytes after the last sample are ignored.
  EXPECT_EQ(data::decode_image(pgm + "trailing", "a.pgm").pixels, d.pixels);
}

// Expected values are Python's min(255, round(v / maxval * 255)), as Pillow's PpmDecoder computes
// them (round: half to even).
TEST(ImageCodecPnm, OtherMaxvalsScaleLikePillow) {
  struct Case {
    int maxval;
    std::vector<int> in, want;
  };
  const Case cases[] = {
      {65535, {0, 128, 257, 32767, 32768, 65280, 65535}, {0, 0, 1, 127, 128, 254, 255}},
      {1000, {0, 1, 2, 500, 999, 1000, 1001}, {0, 0, 1, 128, 255, 255, 255}},  // over maxval clips
      {510, {1, 3, 253, 255}, {0, 2, 126, 128}},                               // exact halves: to even
      {6, {0, 1, 3, 5, 6}, {0, 42, 128, 212, 255}},                            // 1-byte samples
      {1, {0, 1}, {0, 255}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.maxval);
    const std::string header = "P5\n" + std::to_string(c.in.size()) + " 1\n" + std::to_string(c.maxval) + "\n";
    const data::DecodedImage d = data::decode_image(pnm(header, c.in, c.maxval > 255 ? 2 : 1), "g.pgm");
    EXPECT_EQ(d.channels, 1);
    EXPECT_EQ(d.pixels, bytes_of(c.want));
  }
  // Samples are big-endian: 0x0180 = 384 of 65535 -> 1; 0x8001 -> 128.
  EXPECT_EQ(data::decode_image(std::string("P5 2 1 65535\n\x01\x80\x80\x01", 17), "be.pgm").pixels, bytes_of({1, 128}));
}

TEST(ImageCodecPnm, P6IsRgb) {
  const std::vector<int> px = {255, 0, 0, 0, 255, 0, 0, 0, 255, 12, 34, 56};
  const std::string ppm = pnm("P6\n2 2\n255\n", px, 1);
  const data::ImageHeader h = data::read_image_header(ppm, "a.ppm");
  EXPECT_EQ(h.format, data::ImageFormat::kPnm);
  EXPECT_EQ(h.channels, 3);
  const data::DecodedImage d = data::decode_image(ppm, "a.ppm");
  EXPECT_EQ(d.channels, 3);
  EXPECT_EQ(d.pixels, bytes_of(px));
  EXPECT_EQ(data::decode_image_rgba(ppm, "a.ppm").pixels,
            bytes_of({255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 12, 34, 56, 255}));
  EXPECT_EQ(data::decode_image_rgb(ppm, "a.ppm").pixels, bytes_of(px));
  // 16-bit PPM.
  EXPECT_EQ(data::decode_image(pnm("P6 1 1 65535\n", {65535, 32768, 0}, 2), "w.ppm").pixels, bytes_of({255, 128, 0}));
}

TEST(ImageCodecPnm, HeaderCommentsAndWhitespace) {
  const std::string ppm = pnm("P6 # written by hand\n# a second comment\n2\t1 # width height\r\n# maxval next\n255\n",
                              {1, 2, 3, 4, 5, 6}, 1);
  const data::DecodedImage d = data::decode_image(ppm, "c.ppm");
  EXPECT_EQ(d.width, 2);
  EXPECT_EQ(d.height, 1);
  EXPECT_EQ(d.pixels, bytes_of({1, 2, 3, 4, 5, 6}));
  // One whitespace byte ends the maxval; the next byte is a sample even when it is whitespace.
  EXPECT_EQ(data::decode_image(pnm("P5 2 1 255\n", {'\n', ' '}, 1), "s.pgm").pixels, bytes_of({'\n', ' '}));
}

TEST(ImageCodecPnm, MalformedFilesAreClearErrors) {
  struct Case {
    std::string bytes;
    std::vector<std::string> message;
  };
  const Case cases[] = {
      {pnm("P5\n4 4\n255\n", std::vector<int>(15, 9), 1),
       {"[image] bad.pnm: invalid PGM/PPM: the pixel data is truncated", "need 16 bytes", "has 15 after the header"}},
      {pnm("P6\n2 2\n65535\n", std::vector<int>(11, 9), 2) + "x", {"truncated", "need 24 bytes", "has 23"}},
      {pnm("P5\n2 2\n0\n", {0, 0, 0, 0}, 1), {"maxval 0 is outside [1, 65535]"}},
      {pnm("P5\n2 2\n70000\n", {0, 0, 0, 0}, 2), {"maxval 70000 is outside [1, 65535]"}},
      {"P5\n", {"[image] bad.pnm: invalid PGM/PPM header: the file ends before the width"}},
      {"P5 # a comment and nothing else", {"the file ends before the width"}},
      {"P6 2 2\n", {"the file ends before the maxval"}},
      {"P5 abc 2 255\n", {"the width is not a decimal number", "\"abc\""}},
      {"P5 2 -2 255\n", {"the height is not a decimal number", "\"-2\""}},
      {"P5 2 2 25x\n", {"the maxval is not a decimal number", "\"25x\""}},
      {"P5 2 2", {"the height is not a decimal number", "then the end of the file"}},
      {"P5 12345678901 1 255\n", {"the width has more than 10 digits"}},
      {"P5 0 2 255\n", {"image size 0 x 2 is outside [1, 65536] pixels a side"}},
      {"P6 70000 1 255\n", {"image size 70000 x 1 is outside"}},
      {"P5x 2 2 255\n", {"expected whitespace after the magic number P5"}},
      {"P5", {"expected whitespace after the magic number P5"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.bytes.substr(0, 20));
    EXPECT_TRUE(throws_error([&] { data::decode_image(c.bytes, "bad.pnm"); }, c.message));
    EXPECT_TRUE(throws_error([&] { data::decode_image_rgba(c.bytes, "bad.pnm"); }, c.message));
  }
  // Header faults are found by read_image_header as well.
  EXPECT_TRUE(throws_error([] { data::read_image_header(std::string("P5\n2 2\n0\n"), "h.pgm"); }, {"maxval 0"}));
  // ASCII Netpbm (P2, P3) and bitmaps (P4) are other formats.
  EXPECT_TRUE(throws_error([] { data::decode_image("P2\n1 1\n255\n0\n", "a.pgm"); },
                           {"not a PNG, JPEG, PGM or PPM file", "50 32"}));
}

TEST(ImageCodecPnm, PixelLimitActsBeforeAllocation) {
  const std::string small = pnm("P5 4 4 255\n", std::vector<int>(16, 1), 1);
  EXPECT_NO_THROW(data::decode_image(small, "s.pgm", 16));
  EXPECT_TRUE(throws_error([&] { data::decode_image(small, "s.pgm", 15); },
                           {"[image] s.pgm", "4 x 4 = 16 pixels exceeds the limit of 15 pixels"}));
  // 60000 x 60000 (3.6 gigapixels) with no samples at all: refused from the header at once.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(throws_error([] { data::decode_image(std::string("P6\n60000 60000\n255\n"), "huge.ppm"); },
                           {"60000 x 60000 = 3600000000 pixels exceeds the limit of 100000000"}));
  EXPECT_TRUE(throws_error([] { data::decode_image_rgba(std::string("P5\n60000 60000\n65535\n"), "huge.pgm"); },
                           {"60000 x 60000 = 3600000000 pixels exceeds the limit of 100000000"}));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.0);
  // The header alone reads fine: the limit is the decoder's.
  const data::ImageHeader h = data::read_image_header(std::string("P6\n60000 60000\n255\n"), "huge.ppm");
  EXPECT_EQ(h.width, 60000);
  EXPECT_EQ(h.channels, 3);
}

}  // namespace
}  // namespace perceiver
