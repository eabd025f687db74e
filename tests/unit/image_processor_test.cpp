// The HF image processors against the Pillow/transformers reference
// (tests/data/hf/preprocessing/image_processing.safetensors, README there): PNG decoding, crop
// boxes, resized 8-bit images and pixel_values are bit-exact from the reference's decoded pixels;
// and exact from the JPEG files themselves too (libjpeg-turbo decodes them as Pillow does).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "perceiver/core/error.h"
#include "perceiver/data/image_processor.h"
#include "perceiver/io/safetensors.h"

namespace perceiver::data {
namespace {

const char* kKeys[] = {"chelsea", "rocket", "grace_hopper"};
const char* kFiles[] = {"chelsea.png", "rocket.jpg", "grace_hopper.jpg"};

std::string fixture(const std::string& name) {
  return std::string(PERCEIVER_SOURCE_DIR) + "/tests/data/hf/preprocessing/" + name;
}

const std::map<std::string, Tensor>& reference() {
  static const std::map<std::string, Tensor> t = io::load_safetensors(fixture("image_processing.safetensors")).tensors;
  return t;
}

RgbImage ref_image(const std::string& name) {
  const Tensor& t = reference().at(name);  // uint8 loads as int32
  std::vector<uint8_t> px(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) px[static_cast<size_t>(i)] = static_cast<uint8_t>(t.data<int32_t>()[i]);
  return make_rgb_image(t.dim(0), t.dim(1), std::move(px));
}

// Image i of a stacked (3, 3, H, W) reference.
std::vector<float> ref_pixel_values(const std::string& name, size_t i) {
  const Tensor& t = reference().at(name);
  const int64_t n = t.numel() / t.dim(0);
  return std::vector<float>(t.f32() + static_cast<int64_t>(i) * n, t.f32() + static_cast<int64_t>(i + 1) * n);
}

int64_t count_differences(const RgbImage& a, const RgbImage& b) {
  EXPECT_EQ(a.height, b.height);
  EXPECT_EQ(a.width, b.width);
  if (a.pixels.size() != b.pixels.size()) return -1;
  int64_t n = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) n += a.pixels[i] != b.pixels[i];
  return n;
}

ImageProcessorConfig floor_offset() {
  ImageProcessorConfig c = perceiver_processor_config();
  c.crop_offset = CropOffset::kFloor;
  return c;
}

TEST(ImageProcessor, PngDecodesExactly) {
  const RgbImage png = load_image_rgb(fixture("images/chelsea.png"));
  EXPECT_EQ(count_differences(png, ref_image("chelsea.decoded_rgb")), 0);
}

TEST(ImageProcessor, CropBoxesMatchBothOffsetRules) {
  for (const char* key : kKeys) {
    const RgbImage img = ref_image(std::string(key) + ".decoded_rgb");
    for (const auto& [variant, offset] : {std::pair{"perceiver", CropOffset::kCeil}, std::pair{"perceiver_floor_offset", CropOffset::kFloor}}) {
      const Tensor& ref = reference().at(std::string(key) + "." + variant + ".crop_box_top_left_size");
      const CropBox b = perceiver_crop_box(img.height, img.width, 224, 256, offset);
      EXPECT_EQ(b.top, ref.data<int32_t>()[0]) << key << " " << variant;
      EXPECT_EQ(b.left, ref.data<int32_t>()[1]) << key << " " << variant;
      EXPECT_EQ(b.size, ref.data<int32_t>()[2]) << key << " " << variant;
    }
  }
}

TEST(ImageProcessor, ResizedImagesArePillowExact) {
  const std::pair<const char*, ImageProcessorConfig> variants[] = {
      {"perceiver", perceiver_processor_config()}, {"perceiver_floor_offset", floor_offset()}, {"vit", vit_processor_config()}};
  for (const char* key : kKeys) {
    const RgbImage img = ref_image(std::string(key) + ".decoded_rgb");
    for (const auto& [variant, config] : variants)
      EXPECT_EQ(count_differences(process_rgb(img, config), ref_image(std::string(key) + "." + variant + ".resized_rgb")), 0)
          << key << " " << variant;
  }
  // The comparison is sensitive: one pixel of crop offset changes chelsea's result.
  EXPECT_GT(count_differences(process_rgb(ref_image("chelsea.decoded_rgb"), floor_offset()),
                              ref_image("chelsea.perceiver.resized_rgb")), 1000);
}

TEST(ImageProcessor, PixelValuesAreExactFromTheReferencePixels) {
  const std::pair<const char*, ImageProcessorConfig> variants[] = {
      {"perceiver", perceiver_processor_config()}, {"perceiver_floor_offset", floor_offset()}, {"vit", vit_processor_config()}};
  for (const auto& [variant, config] : variants) {
    std::vector<RgbImage> batch;
    for (const char* key : kKeys) batch.push_back(ref_image(std::string(key) + ".decoded_rgb"));
    const Tensor got = preprocess_images(batch, config);
    const Tensor& ref = reference().at(std::string(variant) + ".pixel_values");
    ASSERT_EQ(got.shape(), ref.shape()) << variant;
    int64_t diff = 0;
    for (int64_t i = 0; i < got.numel(); ++i) diff += got.f32()[i] != ref.f32()[i];
    EXPECT_EQ(diff, 0) << variant;
  }
}

// README 5.3: decoding the JPEGs as libjpeg-turbo does (integer islow IDCT, fancy upsampling),
// which image_codec does through libjpeg-turbo itself, gives Pillow's decoded pixels bit for bit,
// so the processed pixel_values are exact from the JPEG files too.
TEST(ImageProcessor, JpegFilesDecodeExactlyAsPillow) {
  const std::pair<const char*, ImageProcessorConfig> variants[] = {{"perceiver", perceiver_processor_config()},
                                                                   {"vit", vit_processor_config()}};
  for (size_t i = 0; i < 3; ++i) {
    const RgbImage decoded = load_image_rgb(fixture(std::string("images/") + kFiles[i]));
    EXPECT_EQ(count_differences(decoded, ref_image(std::string(kKeys[i]) + ".decoded_rgb")), 0) << kKeys[i];
    for (const auto& [variant, config] : variants) {
      const Tensor got = preprocess_images({decoded}, config);
      const std::vector<float> want = ref_pixel_values(std::string(variant) + ".pixel_values", i);
      ASSERT_EQ(static_cast<size_t>(got.numel()), want.size());
      int64_t diff = 0;
      for (int64_t k = 0; k < got.numel(); ++k) diff += got.f32()[k] != want[static_cast<size_t>(k)];
      EXPECT_EQ(diff, 0) << kKeys[i] << " " << variant;
    }
  }
}

TEST(ImageProcessor, ResizeEdgeCases) {
  // Same size: unchanged. Upscaling a constant image stays constant. 1x1 -> anything.
  std::vector<uint8_t> px(5 * 7 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 37);
  const RgbImage img = make_rgb_image(5, 7, px);
  EXPECT_EQ(pillow_resize(img, 5, 7, Resample::kBicubic).pixels, px);
  const RgbImage flat = make_rgb_image(3, 2, std::vector<uint8_t>(18, 200));
  for (Resample r : {Resample::kBilinear, Resample::kBicubic}) {
    const RgbImage up = pillow_resize(flat, 11, 13, r);
    EXPECT_TRUE(std::all_of(up.pixels.begin(), up.pixels.end(), [](uint8_t v) { return v == 200; }));
    const RgbImage one = pillow_resize(make_rgb_image(1, 1, {10, 20, 30}), 4, 3, r);
    EXPECT_EQ(one.at(3, 2, 2), 30);
  }
}

TEST(ImageProcessor, ConfigAndErrors) {
  const nlohmann::json j = {{"size", {{"height", 32}, {"width", 32}}}, {"crop_size", 40}, {"resample", 2},
                            {"image_mean", {0.5, 0.5, 0.5}}, {"feature_extractor_type", "PerceiverFeatureExtractor"}};
  const ImageProcessorConfig c = parse_preprocessor_config(j, "p.json", perceiver_processor_config());
  EXPECT_EQ(c.size, 32);
  EXPECT_EQ(c.crop_size, 40);
  EXPECT_EQ(c.resample, Resample::kBilinear);
  EXPECT_FLOAT_EQ(c.image_mean[1], 0.5f);
  EXPECT_FLOAT_EQ(c.image_std[1], 0.224f);
  EXPECT_THROW(parse_preprocessor_config({{"resample", 1}}, "p", c), Error);
  EXPECT_THROW(parse_preprocessor_config({{"size", {{"height", 3}, {"width", 4}}}}, "p", c), Error);
  EXPECT_THROW(parse_preprocessor_config({{"image_std", {1, 0, 1}}}, "p", c), Error);
  EXPECT_THROW(decode_image_rgb("not an image", "x"), Error);
  EXPECT_THROW(load_image_rgb(fixture("missing.png")), Error);
  EXPECT_THROW(crop(make_rgb_image(2, 2, std::vector<uint8_t>(12)), 1, 1, 2, 1), Error);
  EXPECT_THROW(perceiver_crop_box(10, 10, 300, 256, CropOffset::kCeil), Error);  // crop larger than the image
}

}  // namespace
}  // namespace perceiver::data
