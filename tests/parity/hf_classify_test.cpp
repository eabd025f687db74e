// `perceiver classify` on the vision fixtures: the printed top-k equals softmax(model(pixel_values))
// of the reference preprocessing; preprocessor_config.json and flags configure the processor;
// architectures are dispatched with clear errors.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "parity/hf_task_cli_util.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/models/botnet/botnet.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/data/image_processor.h"
#include "perceiver/ops/activation.h"

namespace perceiver {
namespace {

namespace pio = models::perceiver_io;
using testing::run_perceiver;

std::string image(const std::string& name) {
  return std::string(PERCEIVER_SOURCE_DIR) + "/tests/data/hf/preprocessing/images/" + name;
}

nlohmann::json labels(int n) {
  nlohmann::json j = nlohmann::json::object();
  for (int i = 0; i < n; ++i) j[std::to_string(i)] = "label number " + std::to_string(i) + ", a, b";
  return j;
}

// The CLI's report for one image, computed in-process from (1, 3, H, W) pixel values.
std::string expected_report(const std::string& dir, const std::string& path, const Tensor& pixels, int top) {
  auto model = testing::load_perceiver_io_folder(dir);
  autograd::NoGradGuard no_grad;
  const Tensor probs = ops::softmax(model->forward({{"inputs", pixels}}).at("logits"));
  const int64_t k = probs.dim(-1);
  std::vector<int64_t> idx(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) idx[static_cast<size_t>(i)] = i;
  const float* p = probs.f32();
  std::stable_sort(idx.begin(), idx.end(), [p](int64_t x, int64_t y) { return p[x] > p[y]; });
  std::string out = path + "\n";
  for (int i = 0; i < top; ++i) {
    char line[256];
    std::snprintf(line, sizeof line, "  %.4f  %lld  %s\n", p[idx[i]], static_cast<long long>(idx[i]),
                  model->config().id2label[static_cast<size_t>(idx[i])].c_str());
    out += line;
  }
  return out;
}

TEST(HfClassify, TopLabelsEqualTheModelOnTheReferencePixels) {
  testing::TempDir tmp;
  const std::string dir = testing::make_family_folder("vision-perceiver-fourier", tmp.path + "/f", {{"id2label", labels(10)}});
  // chelsea.png decodes exactly, so the processor gives the reference pixel_values bit for bit.
  const Tensor all = io::load_safetensors(std::string(PERCEIVER_SOURCE_DIR) +
                                          "/tests/data/hf/preprocessing/image_processing.safetensors").tensors.at("perceiver.pixel_values");
  const Tensor chelsea = all.slice0(0, 1).clone();
  const testing::CliRun r = run_perceiver({"classify", "--model", dir, image("chelsea.png"), "--top", "3"}, false);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, expected_report(dir, image("chelsea.png"), chelsea, 3));

  // Several images, the default top 5; the conv stem model too.
  const std::string conv = testing::make_family_folder("vision-perceiver-conv", tmp.path + "/c", {{"id2label", labels(10)}});
  const testing::CliRun many = run_perceiver({"classify", "--model", conv, image("rocket.jpg"), image("chelsea.png")}, false);
  ASSERT_EQ(many.code, 0) << many.out;
  // each image's report is the conv model's own top 5 on the default processor's pixels
  const Tensor rocket = data::preprocess_images({data::load_image_rgb(image("rocket.jpg"))}, data::perceiver_processor_config());
  EXPECT_EQ(many.out, expected_report(conv, image("rocket.jpg"), rocket, 5) + expected_report(conv, image("chelsea.png"), chelsea, 5));
}

TEST(HfClassify, LearnedPositionsNeedTheirImageSize) {
  testing::TempDir tmp;
  const std::string dir = testing::make_family_folder("vision-perceiver-learned", tmp.path + "/l", {{"id2label", labels(10)}});
  testing::CliRun r = run_perceiver({"classify", "--model", dir, image("chelsea.png")});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("takes 8 x 8 images (config image_size), got a processor size of 224; set --size 8"), std::string::npos) << r.out;

  // preprocessor_config.json sets the processor (crop fraction 8/9, floor offset by flag).
  const nlohmann::json pc = {{"size", 8}, {"crop_size", 9}, {"resample", 3}, {"image_mean", {0.4, 0.5, 0.6}}};
  std::ofstream(dir + "/preprocessor_config.json") << pc.dump();
  r = run_perceiver({"classify", "--model", dir, image("chelsea.png"), "--top", "4", "--crop-offset", "floor"}, false);
  ASSERT_EQ(r.code, 0) << r.out;
  data::ImageProcessorConfig p = data::parse_preprocessor_config(pc, "pc", data::perceiver_processor_config());
  p.crop_offset = data::CropOffset::kFloor;
  const Tensor pixels = data::preprocess_images({data::load_image_rgb(image("chelsea.png"))}, p);
  EXPECT_EQ(r.out, expected_report(dir, image("chelsea.png"), pixels, 4));
}

// A timm BoTNet folder (the fixture: 64 x 96 input, no preprocessing fields, so timm's defaults)
// is preprocessed as timm's eval transform: the report is the model's own top k on timm's pixels
// (tests/data/botnet/preprocess, fixture_default); label_names name the classes; the HF processor
// flags are refused.
TEST(HfClassify, TimmBotNetFolderUsesTimmsTransform) {
  const std::string src = std::string(PERCEIVER_SOURCE_DIR) + "/tests/data/botnet";
  const std::string wide = src + "/preprocess/wide.png";
  const Tensor timm_pixels = io::load_safetensors(src + "/preprocess/expected.safetensors").tensors.at("fixture_default");
  auto report = [&](const std::string& dir, int top) {
    auto model = io::load_model_folder(dir);
    autograd::NoGradGuard no_grad;
    const Tensor probs = ops::softmax(model->forward({{"pixel_values", timm_pixels.reshape({1, 3, 64, 96})}}).at("logits"));
    const std::vector<std::string> names = dynamic_cast<models::BotNet&>(*model).config().label_names;
    std::vector<int64_t> idx = {0, 1, 2, 3, 4};
    const float* p = probs.f32();
    std::stable_sort(idx.begin(), idx.end(), [p](int64_t x, int64_t y) { return p[x] > p[y]; });
    std::string out = wide + "\n";
    for (int i = 0; i < top; ++i) {
      char line[256];
      const size_t c = static_cast<size_t>(idx[static_cast<size_t>(i)]);
      std::snprintf(line, sizeof line, "  %.4f  %lld  %s\n", p[c], static_cast<long long>(c),
                    names.empty() ? ("LABEL_" + std::to_string(c)).c_str() : names[c].c_str());
      out += line;
    }
    return out;
  };
  testing::CliRun r = run_perceiver({"classify", "--model", src, wide, "--top", "3"}, false);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, report(src, 3));
  EXPECT_NE(r.out.find("LABEL_"), std::string::npos) << r.out;

  testing::TempDir tmp;
  std::filesystem::copy(src + "/model.safetensors", tmp.path + "/model.safetensors");
  nlohmann::json config = read_json_file(src + "/config.json");
  config["label_names"] = {"ant", "bee", "cat", "dog", "eel"};
  std::ofstream(tmp.path + "/config.json") << config.dump();
  r = run_perceiver({"classify", "--model", tmp.path, wide}, false);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, report(tmp.path, 5));

  r = run_perceiver({"classify", "--model", src, wide, "--size", "64"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("a botnet26t_256 folder is preprocessed as its config.json pretrained_cfg says"), std::string::npos)
      << r.out;
}

TEST(HfClassify, ErrorsAreOneLine) {
  testing::TempDir tmp;
  const std::string dir = testing::make_family_folder("vision-perceiver-fourier", tmp.path + "/f");
  const std::string lm = testing::make_family_folder("language-perceiver", tmp.path + "/lm");
  std::filesystem::create_directories(tmp.path + "/vit");
  std::ofstream(tmp.path + "/vit/config.json") << R"({"architectures": ["ViTForImageClassification"], "model_type": "vit"})";
  std::ofstream(tmp.path + "/bad.png") << "not a png";
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const Case cases[] = {
      {{"classify", "--model", lm, image("chelsea.png")}, "expected an image classification model folder"},
      {{"classify", "--model", tmp.path + "/vit", image("chelsea.png")}, "expected model.safetensors or pytorch_model.bin"},
      {{"classify", "--model", dir, tmp.path + "/missing.png"}, "missing.png"},
      {{"classify", "--model", dir, tmp.path + "/bad.png"}, "not a PNG, JPEG, PGM or PPM file"},
      {{"classify", "--model", dir, image("chelsea.png"), "--crop-offset", "round"}, "--crop-offset"},
      {{"classify", "--model", dir, image("chelsea.png"), "--top", "0"}, "--top"},
      {{"classify", "--model", dir, image("chelsea.png"), "--size", "300"}, "must lie in [1, 300]"},
      {{"classify", "--model", dir}, "images is required"},
  };
  for (const Case& c : cases) {
    const testing::CliRun r = run_perceiver(c.args);
    EXPECT_NE(r.code, 0) << c.message;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << "expected '" << c.message << "' in: " << r.out;
    EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << "not one line: " << r.out;
  }
}

}  // namespace
}  // namespace perceiver
