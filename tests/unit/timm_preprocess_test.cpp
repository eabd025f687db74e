// timm's evaluation transform (ImageProcessorConfig::timm, what `perceiver classify` applies to a
// timm BoTNet folder) against timm 1.0 + torchvision + Pillow (tests/data/botnet/preprocess, made
// by tools/make_timm_preprocess_fixtures.py): both resize rules, half-to-even crop offsets,
// bilinear and bicubic, grey models; and BoTNet's reading of the pretrained_cfg fields.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/data/image_processor.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/models/botnet/botnet.h"

namespace perceiver::data {
namespace {

std::string fixture(const std::string& name) {
  return std::string(PERCEIVER_SOURCE_DIR) + "/tests/data/botnet/preprocess/" + name;
}

// The processor a case describes, from timm's resolved values.
ImageProcessorConfig case_config(const nlohmann::json& c) {
  const nlohmann::json& input = c.at("pretrained_cfg").at("input_size");
  const nlohmann::json& r = c.at("resolved");
  ImageProcessorConfig p;
  p.timm = true;
  p.do_center_crop = false;
  p.channels = input[0].get<int64_t>();
  p.height = input[1].get<int64_t>();
  p.width = input[2].get<int64_t>();
  p.crop_pct = r.at("crop_pct").get<double>();
  p.resample = r.at("interpolation").get<std::string>() == "bilinear" ? Resample::kBilinear : Resample::kBicubic;
  for (size_t i = 0; i < static_cast<size_t>(p.channels); ++i) {
    p.image_mean[i] = r.at("mean")[i].get<float>();
    p.image_std[i] = r.at("std")[i].get<float>();
  }
  return p;
}

TEST(TimmPreprocess, EqualsTimmOnEveryCase) {
  const nlohmann::json cases = read_json_file(fixture("cases.json")).at("cases");
  const auto expected = io::load_safetensors(fixture("expected.safetensors")).tensors;
  ASSERT_EQ(cases.size(), 6u);
  for (const nlohmann::json& c : cases) {
    const std::string key = c.at("key").get<std::string>();
    SCOPED_TRACE(key);
    const ImageProcessorConfig p = case_config(c);
    const RgbImage image = load_image_rgb(fixture(c.at("image").get<std::string>()));
    const auto size = timm_resized_size(image.height, image.width, p);
    EXPECT_EQ(size[0], c.at("resized_size")[0].get<int64_t>());
    EXPECT_EQ(size[1], c.at("resized_size")[1].get<int64_t>());
    const Tensor got = preprocess_images({image}, p);
    const Tensor& want = expected.at(key);
    ASSERT_EQ(got.shape(), (Shape{1, want.dim(0), want.dim(1), want.dim(2)}));
    // Pillow's fixed-point resampling and torchvision's float32 normalisation, reproduced exactly
    double worst = 0.0;
    int64_t at = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      const double d = std::fabs(static_cast<double>(got.f32()[i]) - want.f32()[i]);
      if (d > worst) worst = d, at = i;
    }
    EXPECT_EQ(worst, 0.0) << "worst element " << at << ": " << got.f32()[at] << " vs timm " << want.f32()[at];
  }
}

TEST(TimmPreprocess, SmallImagesAreScaledUpAndBadSettingsRefused) {
  ImageProcessorConfig p;
  p.timm = true;
  p.height = p.width = 16;
  p.crop_pct = 1.0;
  // a 4 x 6 image: the shorter side becomes 16, the longer int(16 * 6 / 4) = 24, then the crop
  const Tensor t = preprocess_images({make_rgb_image(4, 6, std::vector<uint8_t>(72, 200))}, p);
  EXPECT_EQ(t.shape(), (Shape{1, 3, 16, 16}));
  p.crop_pct = 1.5;  // timm would pad with zeros; refused
  EXPECT_THROW(preprocess_images({make_rgb_image(4, 6, std::vector<uint8_t>(72, 200))}, p), Error);
  p.crop_pct = 1.0;
  p.channels = 2;
  try {
    preprocess_images({make_rgb_image(4, 6, std::vector<uint8_t>(72, 200))}, p);
    FAIL() << "2 channels accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected 1 (grey) or 3 (RGB) channels, got 2"), std::string::npos) << e.what();
  }
}

// BoTNet reads the same fields from its config.json: timm's values, its defaults, clear errors.
TEST(TimmPreprocess, BotNetConfigReadsPretrainedCfg) {
  nlohmann::json j = read_json_file(std::string(PERCEIVER_SOURCE_DIR) + "/tests/data/botnet/config.json");
  j["pretrained_cfg"].erase("mean");
  j["pretrained_cfg"].erase("std");
  models::BotNetConfig c = models::parse_botnet_config(j, "config.json");
  EXPECT_DOUBLE_EQ(c.crop_pct, 0.875);  // absent: timm's defaults
  EXPECT_EQ(c.interpolation, "bicubic");
  EXPECT_EQ(c.mean, (std::vector<float>{0.485f, 0.456f, 0.406f}));
  EXPECT_EQ(c.std, (std::vector<float>{0.229f, 0.224f, 0.225f}));
  j["pretrained_cfg"]["crop_pct"] = 0.95;
  j["pretrained_cfg"]["interpolation"] = "bilinear";
  j["pretrained_cfg"]["std"] = {0.5};
  j["label_names"] = {"a", "b", "c", "d", "e"};
  c = models::parse_botnet_config(j, "config.json");
  EXPECT_DOUBLE_EQ(c.crop_pct, 0.95);
  EXPECT_EQ(c.interpolation, "bilinear");
  EXPECT_EQ(c.std, (std::vector<float>{0.5f, 0.5f, 0.5f}));  // one value for every channel
  EXPECT_EQ(c.label_names.size(), 5u);
  // the exported config.json carries them back
  const models::BotNetConfig back = models::parse_botnet_config(c.to_hub_json(), "back");
  EXPECT_DOUBLE_EQ(back.crop_pct, 0.95);
  EXPECT_EQ(back.interpolation, "bilinear");
  EXPECT_EQ(back.std, c.std);
  EXPECT_EQ(back.label_names, c.label_names);

  const std::pair<nlohmann::json, std::string> bad[] = {
      {{{"pretrained_cfg", {{"crop_mode", "squash"}}}}, "crop_mode"},
      {{{"pretrained_cfg", {{"interpolation", "lanczos"}}}}, "interpolation"},
      {{{"pretrained_cfg", {{"crop_pct", 1.2}}}}, "crop_pct"},
      {{{"pretrained_cfg", {{"mean", {0.1, 0.2}}}}}, "mean: expected 3 values"},
      {{{"label_names", {"a", "b"}}}, "label_names: expected num_classes = 5 names, got 2"},
  };
  for (const auto& [patch, message] : bad) {
    nlohmann::json k = read_json_file(std::string(PERCEIVER_SOURCE_DIR) + "/tests/data/botnet/config.json");
    k.merge_patch(patch);
    try {
      models::parse_botnet_config(k, "config.json");
      ADD_FAILURE() << "accepted " << patch.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace perceiver::data
