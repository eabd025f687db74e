// Training PerceiverForOpticalFlow from run configs (train/task.h, kind flow): synthetic pairs
// drawn on the fly from the committed assets (tests/data/flow/assets) learn, resume bit for bit,
// and export a folder whose tiled flow gives the run's last evaluation; FlyingChairs-layout
// folders train with random crops and flips (the loss falls); mismatched configs are errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "perceiver/core/error.h"
#include "perceiver/data/optical_flow.h"
#include "perceiver/data/image_codec.h"
#include "perceiver/data/image_processor.h"
#include "perceiver/io/atomic_file.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/models/perceiver_io/perceiver_io.h"
#include "perceiver/tasks/optical_flow.h"
#include "perceiver/train/checkpoint.h"
#include "perceiver/train/task.h"
#include "perceiver/train/trainer.h"
#include "testing/train_checks.h"
#include "testing/tiny_data.h"

namespace perceiver {
namespace {

std::string fixture(const std::string& name) {
  return (std::filesystem::path(PERCEIVER_SOURCE_DIR) / "tests/data/flow" / name).string();
}

// A small PerceiverForOpticalFlow (d_model 322 = 64 patch channels + 258 Fourier features, fixed
// by the hub model's preprocessor) on 16 x 16 pairs.
nlohmann::json flow_hub() {
  return {{"architectures", {"PerceiverForOpticalFlow"}},
          {"d_model", 322},
          {"d_latents", 32},
          {"num_latents", 8},
          {"num_blocks", 1},
          {"num_self_attends_per_block", 1},
          {"num_self_attention_heads", 2},
          {"num_cross_attention_heads", 1},
          {"cross_attention_shape_for_attention", "kv"},
          {"train_size", {16, 16}}};
}

nlohmann::json synth_run(const std::string& assets, int epochs) {
  return {{"model", {{"type", "perceiver_io"}, {"hub_config", flow_hub()}}},
          {"train", {{"epochs", epochs}, {"batch_size", 4}, {"lr", 2e-3}, {"warmup_steps", 2}, {"log_every", 1},
                     {"seed", 4}, {"label_smoothing", 0.0}}},
          {"data", {{"format", "flow_synth"}, {"dir", assets}, {"train_pairs", 16}, {"test_pairs", 6}, {"hflip", true}}}};
}

std::vector<double> train_losses(const std::string& metrics) {
  std::ifstream f(metrics);
  std::vector<double> out;
  for (std::string line; std::getline(f, line);) {
    const nlohmann::json r = nlohmann::json::parse(line);
    if (r["type"] == "train") out.push_back(r["loss"]);
  }
  return out;
}

TEST(FlowTrain, SyntheticPairsTrainResumeAndExport) {
  testing::TempDir tmp;
  train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = tmp.path + "/full";
  const train::RunConfig rc = train::parse_run_config(synth_run(fixture("assets"), 2));
  const train::TrainResult full = train::run_training(rc, opt);
  ASSERT_FALSE(full.interrupted);
  EXPECT_EQ(full.steps, 8);
  EXPECT_EQ(full.last_eval.count, 6 * 16 * 16) << "every synthetic pixel has a known flow";
  EXPECT_TRUE(std::isfinite(full.last_eval.loss));
  EXPECT_GT(full.last_eval.loss, 0.0);
  {
    std::ifstream metrics(opt.out_dir + "/metrics.jsonl");
    bool saw_eval = false;
    for (std::string line; std::getline(metrics, line);) {
      const nlohmann::json r = nlohmann::json::parse(line);
      if (r["type"] != "eval") continue;
      saw_eval = true;
      EXPECT_TRUE(r.contains("test_epe") && r.contains("test_under_1px") && r.contains("test_under_3px")) << line;
    }
    EXPECT_TRUE(saw_eval);
  }

  // interrupted + resumed == uninterrupted, bit for bit (the pairs come from the step's generator)
  testing::expect_resume_is_exact(rc, opt, tmp.path + "/full", tmp.path + "/split", 3);

  // the exported folder is an HF PerceiverForOpticalFlow: its tiled flow (one tile per pair)
  // on the held-out pairs gives the run's last evaluation
  auto model = io::load_model_folder(tmp.path + "/full/export", {"PerceiverForOpticalFlow"}, "test");
  const auto* flow_model = dynamic_cast<const models::perceiver_io::PerceiverIO*>(model.get());
  ASSERT_NE(flow_model, nullptr);
  train::Task task(rc, train::Task::Mode::kEvaluate);
  data::FlowErrors e;
  for (int64_t i = 0; i < task.test_size(); ++i) {
    const models::TensorMap batch = task.test_batch(i, 1);
    // frames back from the patch features' centre taps (channel 12 + c of each frame, in [-1, 1])
    data::RgbImage f[2];
    for (int k = 0; k < 2; ++k) {
      std::vector<uint8_t> px(16 * 16 * 3);
      for (int c = 0; c < 3; ++c)
        for (int64_t p = 0; p < 256; ++p)
          px[static_cast<size_t>(p * 3 + c)] = static_cast<uint8_t>(
              std::lround((batch.at("inputs").f32()[(k * 27 + 12 + c) * 256 + p] + 1.0f) / 2.0f * 255.0f));
      f[k] = data::make_rgb_image(16, 16, std::move(px));
    }
    tasks::FlowOptions fo;
    fo.min_overlap = 4;  // below the 16 x 16 tile
    const Tensor pred = tasks::estimate_flow(*flow_model, f[0], f[1], fo);
    data::add_flow_errors(pred.reshape({1, 16, 16, 2}), batch.at("target"), e);
  }
  EXPECT_EQ(e.known, full.last_eval.count);
  EXPECT_NEAR(e.epe(), full.last_eval.loss, 1e-4 * std::max(1.0, full.last_eval.loss));

  // the zero-flow baseline next to it: the mean length of the ground-truth vectors
  double zero = 0;
  for (int64_t i = 0; i < task.test_size(); ++i) {
    const Tensor t = task.test_batch(i, 1).at("target");
    for (int64_t p = 0; p < 256; ++p) zero += std::hypot(t.f32()[2 * p], t.f32()[2 * p + 1]);
  }
  EXPECT_NEAR(full.last_eval.zero_flow_epe(), zero / (6 * 256), 1e-9 * zero);

  // OUT/samples/sample_NN.png: frame 1 | frame 2 | ground truth | prediction of the first 4 pairs
  ASSERT_EQ(full.samples.size(), 4u);
  for (int64_t i = 0; i < 4; ++i) {
    const std::string path = tmp.path + "/full/samples/sample_0" + std::to_string(i) + ".png";
    const data::DecodedImage png = data::decode_image(io::read_file(path), path);
    ASSERT_EQ(png.height, 16);
    ASSERT_EQ(png.width, 4 * 16);
    const models::TensorMap batch = task.test_batch(i, 1);
    const Tensor truth = batch.at("target").reshape({16, 16, 2});
    float max_flow = 1e-3f;
    for (int64_t p = 0; p < 256; ++p) max_flow = std::max(max_flow, std::hypot(truth.f32()[2 * p], truth.f32()[2 * p + 1]));
    const data::RgbImage gt = data::flow_to_color(truth, max_flow);
    int worst = 0;
    for (int64_t y = 0; y < 16; ++y)
      for (int64_t x = 0; x < 16; ++x)
        for (int c = 0; c < 3; ++c) {
          const int frame1 = static_cast<int>(std::lround((batch.at("inputs").f32()[(12 + c) * 256 + y * 16 + x] + 1) / 2 * 255));
          worst = std::max(worst, std::abs(png.pixels[static_cast<size_t>((y * 64 + x) * 3 + c)] - frame1));
          EXPECT_EQ(png.pixels[static_cast<size_t>((y * 64 + 32 + x) * 3 + c)], gt.at(y, x, c)) << path << " ground truth";
        }
    EXPECT_LE(worst, 0) << path << ": the first panel is frame 1";
  }
}

TEST(FlowTrain, FolderPairsLossFalls) {
  testing::TempDir tmp;
  nlohmann::json j = synth_run("", 30);
  j["train"]["batch_size"] = 1;
  j["train"]["lr"] = 3e-3;
  j["data"] = {{"format", "flow_folder"}, {"dir", fixture("pairs")}, {"test_fraction", 0.5}, {"hflip", true}};
  train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = tmp.path + "/run";
  const train::TrainResult r = train::run_training(train::parse_run_config(j), opt);
  EXPECT_EQ(r.steps, 30);  // one training pair (20 x 24), random 16 x 16 crops
  EXPECT_GT(r.last_eval.count, 100);
  const std::vector<double> losses = train_losses(opt.out_dir + "/metrics.jsonl");
  ASSERT_GE(losses.size(), 20u);
  const double early = (losses[0] + losses[1] + losses[2]) / 3;
  const double late = (losses[losses.size() - 1] + losses[losses.size() - 2] + losses[losses.size() - 3]) / 3;
  EXPECT_LT(late, 0.6 * early) << "the end-point error falls on a constant flow";
}

// data.*_translation, *_rotation and *_scale reach the pair generator: all zero, nothing moves;
// rotation alone moves pixels; out-of-range values are config errors naming the key.
TEST(FlowTrain, MotionRangesReachTheGenerator) {
  nlohmann::json j = synth_run(fixture("assets"), 1);
  for (const char* k : {"sprite_translation", "background_translation", "sprite_rotation", "background_rotation",
                        "sprite_scale", "background_scale"})
    j["data"][k] = 0.0;
  const auto max_motion = [](const nlohmann::json& config) {
    train::Task task(train::parse_run_config(config), train::Task::Mode::kEvaluate);
    float m = 0;
    for (int64_t i = 0; i < task.test_size(); ++i) {
      const Tensor t = task.test_batch(i, 1).at("target");
      for (int64_t p = 0; p < t.numel(); ++p) m = std::max(m, std::abs(t.f32()[p]));
    }
    return m;
  };
  EXPECT_EQ(max_motion(j), 0.0f);
  j["data"]["background_rotation"] = 0.1;
  EXPECT_GT(max_motion(j), 0.05f) << "a rotation of up to 0.1 rad moves the background";
  j["data"]["sprite_scale"] = 0.7;
  EXPECT_NE(testing::task_error(j).find("sprite_scale"), std::string::npos) << testing::task_error(j);
}

// --downscale D: the model sees both frames shrunk by D (Pillow's bilinear resize), and its flow is
// resized back with pixel centres aligned and multiplied by D; frames too small for that are an
// error naming the sizes.
TEST(FlowTrain, DownscaleMeasuresInTheSmallerFrames) {
  const auto model = models::perceiver_io::create_perceiver_io(
      models::perceiver_io::parse_hf_config(flow_hub(), "test"), 7);
  // 33 x 50 shrunk by 2 is 16 x 25: v is scaled by 33 / 16, u by 50 / 25
  constexpr int64_t H = 33, W = 50, h = 16, w = 25;
  Rng rng(1, 2);
  data::RgbImage f[2];
  for (auto& img : f) {
    std::vector<uint8_t> px(H * W * 3);
    for (auto& v : px) v = static_cast<uint8_t>(rng.below(256));
    img = data::make_rgb_image(H, W, std::move(px));
  }
  tasks::FlowOptions fo;
  fo.min_overlap = 4;
  const Tensor small = tasks::estimate_flow(*model, data::pillow_resize(f[0], h, w, data::Resample::kBilinear),
                                            data::pillow_resize(f[1], h, w, data::Resample::kBilinear), fo);
  fo.downscale = 2;
  const Tensor full = tasks::estimate_flow(*model, f[0], f[1], fo);
  ASSERT_EQ(full.shape(), (Shape{H, W, 2}));
  const double ry = static_cast<double>(H) / h, rx = static_cast<double>(W) / w;
  double worst = 0, scale = 0;
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int c = 0; c < 2; ++c) {
        // the full-size pixel centre in the small frame, clamped at the border
        const double sy = std::clamp((y + 0.5) / ry - 0.5, 0.0, h - 1.0), sx = std::clamp((x + 0.5) / rx - 0.5, 0.0, w - 1.0);
        const int64_t y0 = static_cast<int64_t>(sy), x0 = static_cast<int64_t>(sx);
        const int64_t y1 = std::min<int64_t>(y0 + 1, h - 1), x1 = std::min<int64_t>(x0 + 1, w - 1);
        const auto at = [&](int64_t yy, int64_t xx) { return static_cast<double>(small.f32()[(yy * w + xx) * 2 + c]); };
        const double wy = sy - y0, wx = sx - x0;
        const double lerp = (1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x1)) + wy * ((1 - wx) * at(y1, x0) + wx * at(y1, x1));
        const double want = (c == 0 ? rx : ry) * lerp;  // u horizontal, v vertical
        worst = std::max(worst, std::abs(full.f32()[(y * W + x) * 2 + c] - want));
        scale = std::max(scale, std::abs(want));
      }
  EXPECT_GT(scale, 0.0);
  EXPECT_LE(worst, 1e-5 * std::max(1.0, scale)) << "worst difference from the resized small-frame flow";
  fo.downscale = 3;  // 33 x 50 -> 11 x 16: smaller than the 16 x 16 tile
  try {
    tasks::estimate_flow(*model, f[0], f[1], fo);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shrunk by 3 are 11 x 16, smaller than the model's train_size 16 x 16"),
              std::string::npos) << e.what();
  }
}

// data.texture -> data.texture_final over the run (after data.texture_hold): the training pairs at
// the first step carry the starting texture and at the last the final one (the same layout and
// flow either way); the test pairs carry the final texture.
TEST(FlowTrain, TextureCurriculumReachesTheGenerator) {
  const auto batch_at = [](nlohmann::json j, float texture, float texture_final, double progress, float hold = 0) {
    j["data"]["texture"] = texture;
    j["data"]["texture_final"] = texture_final;
    j["data"]["texture_hold"] = hold;
    train::Task task(train::parse_run_config(j));
    Rng rng(3, 5);
    return task.train_batch({0}, 0, 1, rng, progress);  // one pair: a texture draws seeds after its layout
  };
  const auto same = [](const Tensor& a, const Tensor& b) {
    return a.numel() == b.numel() && std::equal(a.f32(), a.f32() + a.numel(), b.f32());
  };
  nlohmann::json j = synth_run(fixture("assets"), 1);
  j["data"]["hflip"] = false;  // flips draw from the same stream as the texture's seeds
  // (values exact in binary: the blend weights below are exactly 1, 0 and 0.5)
  const models::TensorMap start = batch_at(j, 1, 0, 0.0), end = batch_at(j, 1, 0, 1.0), half = batch_at(j, 1, 0, 0.5);
  EXPECT_TRUE(same(start.at("inputs"), batch_at(j, 1, 1, 0.7).at("inputs")));
  EXPECT_TRUE(same(end.at("inputs"), batch_at(j, 0, 0, 0.3).at("inputs")));
  EXPECT_TRUE(same(half.at("inputs"), batch_at(j, 0.5f, 0.5f, 0.0).at("inputs")));
  // held for the first half of the run, then halfway down at 75%
  EXPECT_TRUE(same(start.at("inputs"), batch_at(j, 1, 0, 0.5, 0.5f).at("inputs")));
  EXPECT_TRUE(same(half.at("inputs"), batch_at(j, 1, 0, 0.75, 0.5f).at("inputs")));
  EXPECT_FALSE(same(start.at("inputs"), end.at("inputs")));
  EXPECT_TRUE(same(start.at("target"), end.at("target")));
  // the held-out pairs: the final texture
  nlohmann::json k = j;
  k["data"]["texture"] = 1.0;
  k["data"]["texture_final"] = 0.0;
  train::Task curriculum(train::parse_run_config(k), train::Task::Mode::kEvaluate), plain(train::parse_run_config(j),
                                                                                         train::Task::Mode::kEvaluate);
  EXPECT_TRUE(same(curriculum.test_batch(0, 2).at("inputs"), plain.test_batch(0, 2).at("inputs")));
  k["data"]["texture_final"] = 1.5;
  EXPECT_NE(testing::task_error(k).find("texture_final"), std::string::npos) << testing::task_error(k);
}

TEST(FlowTrain, RejectsMismatchedConfigs) {
  const auto error_of = testing::task_error;
  nlohmann::json j = synth_run(fixture("assets"), 1);
  j["model"]["hub_config"]["architectures"] = {"PerceiverForMaskedLM"};
  EXPECT_NE(error_of(j).find("trains a PerceiverForOpticalFlow"), std::string::npos) << error_of(j);
  j = synth_run(fixture("assets"), 1);
  j["data"]["max_shift"] = 2;
  EXPECT_NE(error_of(j).find("data.max_shift does not apply to optical flow"), std::string::npos) << error_of(j);
  j = synth_run(fixture("assets"), 1);
  j["model"]["hub_config"]["train_size"] = {24, 32};  // larger than the 20 x 24 pairs
  j["data"] = {{"format", "flow_folder"}, {"dir", fixture("pairs")}};
  EXPECT_NE(error_of(j).find("smaller than the model's train_size 24 x 32"), std::string::npos) << error_of(j);
  j["data"]["dir"] = fixture("bad/missing_flow");
  EXPECT_NE(error_of(j).find("x_flow.flo"), std::string::npos) << error_of(j);
  testing::TempDir tmp;
  testing::make_tiny_fashion_mnist(tmp.path + "/mnist", 20, 10);
  j = synth_run(fixture("assets"), 1);
  j["data"] = {{"dir", tmp.path + "/mnist"}};  // image data for a flow model
  EXPECT_NE(error_of(j).find("\"flow_synth\" or \"flow_folder\""), std::string::npos) << error_of(j);
  j = synth_run(fixture("nowhere"), 1);
  EXPECT_NE(error_of(j).find("nowhere/backgrounds"), std::string::npos) << error_of(j);
}

}  // namespace
}  // namespace perceiver
