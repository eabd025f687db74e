// Multimodal autoencoding (data/moving_av.h, train/task_av.cpp): moving Fashion-MNIST clips with
// a spoken-digit soundtrack (item placement along the four motions, the soundtrack's window, the
// FSDD split by take and its errors), and training a small PerceiverForMultimodalAutoencoding
// from a run config: subsampled queries in training, chunked full decoding in evaluation, the
// loss falls, an interrupted run resumes bit for bit, `eval`'s path gives the run's figures.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "perceiver/core/error.h"
#include "perceiver/data/moving_av.h"
#include "perceiver/data/wav.h"
#include "perceiver/data/image_codec.h"
#include "perceiver/io/atomic_file.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/train/checkpoint.h"
#include "perceiver/train/task.h"
#include "perceiver/train/trainer.h"
#include "testing/train_checks.h"
#include "testing/tiny_data.h"

namespace perceiver {
namespace {

// FSDD-named tones: digit d at (300 + 50 d) Hz, takes 0..5 of two speakers, 8 kHz.
void write_tiny_fsdd(const std::string& dir, int64_t length = 400) {
  std::filesystem::create_directories(dir);
  for (int d = 0; d < 10; ++d)
    for (const char* spk : {"ann", "bob"})
      for (int take = 0; take < 6; ++take) {
        std::vector<float> s(static_cast<size_t>(length + 20 * take));
        for (size_t i = 0; i < s.size(); ++i) s[i] = 0.5f * std::sin(2 * M_PI * (300 + 50 * d) * i / 8000.0);
        std::ofstream f(dir + "/" + std::to_string(d) + "_" + spk + "_" + std::to_string(take) + ".wav", std::ios::binary);
        f << data::encode_wav_pcm16(s, 8000);
      }
}

TEST(MovingAv, ItemFollowsEachMotionInsideTheCanvas) {
  std::vector<float> item(28 * 28, 1.0f);
  const std::vector<float> speech(100, 0.25f);
  data::MovingAvOptions o;
  o.frames = 8;
  o.size = 24;
  o.item_size = 8;
  o.samples_per_frame = 40;
  for (int motion = 0; motion < data::kMotionClasses; ++motion) {
    const data::AvClip c = data::make_av_clip(item.data(), 3, speech, motion, 0.3, o);
    EXPECT_EQ(c.video.shape(), (Shape{8, 3, 24, 24}));
    EXPECT_EQ(c.audio.shape(), (Shape{320, 1}));
    EXPECT_EQ(c.label, 3);
    std::set<std::pair<int64_t, int64_t>> corners;
    for (int64_t f = 0; f < 8; ++f) {
      double sum = 0;
      int64_t top = 24, left = 24;
      for (int64_t y = 0; y < 24; ++y)
        for (int64_t x = 0; x < 24; ++x) {
          const float v = c.video.f32()[(f * 3 + 1) * 576 + y * 24 + x];
          sum += v;
          if (v > 0.5f) top = std::min(top, y), left = std::min(left, x);
        }
      EXPECT_NEAR(sum, 64.0, 1e-3) << "motion " << motion << " frame " << f << ": the whole item inside";
      corners.insert({top, left});
      if (motion == 0) EXPECT_EQ(top, 8) << "horizontal: a fixed row";
      if (motion == 1) EXPECT_EQ(left, 8) << "vertical: a fixed column";
      if (motion == 2) EXPECT_EQ(top, left) << "diagonal";
    }
    EXPECT_GE(corners.size(), 4u) << "motion " << motion << " moves";
  }
  // the soundtrack: 100 samples centred in 320 (110 zeros before), or the middle of a longer one
  const data::AvClip c = data::make_av_clip(item.data(), 0, speech, 0, 0.0, o);
  EXPECT_EQ(c.audio.f32()[109], 0.0f);
  EXPECT_EQ(c.audio.f32()[110], 0.25f);
  EXPECT_EQ(c.audio.f32()[209], 0.25f);
  EXPECT_EQ(c.audio.f32()[210], 0.0f);
  std::vector<float> long_speech(400);
  for (size_t i = 0; i < long_speech.size(); ++i) long_speech[i] = static_cast<float>(i);
  EXPECT_EQ(data::make_av_clip(item.data(), 0, long_speech, 0, 0.0, o).audio.f32()[0], 40.0f);
  EXPECT_THROW(data::make_av_clip(item.data(), 0, speech, 4, 0.0, o), Error);
}

TEST(MovingAv, SpokenDigitsSplitByTakeAndErrors) {
  testing::TempDir tmp;
  write_tiny_fsdd(tmp.path + "/fsdd");
  const data::SpokenDigits test = data::load_spoken_digits(tmp.path + "/fsdd", true);
  const data::SpokenDigits train = data::load_spoken_digits(tmp.path + "/fsdd", false);
  EXPECT_EQ(test.count(), 10 * 2 * 5);
  EXPECT_EQ(train.count(), 10 * 2 * 1);
  float peak = 0;
  for (float v : train.recordings[4][0]) peak = std::max(peak, std::fabs(v));
  EXPECT_NEAR(peak, 1.0f, 1e-6) << "peak-normalised";
  auto error_of = [](const std::string& dir) {
    try {
      data::load_spoken_digits(dir, false);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of(tmp.path + "/none").find("FSDD recordings folder"), std::string::npos);
  std::filesystem::remove(tmp.path + "/fsdd/7_ann_5.wav");
  std::filesystem::remove(tmp.path + "/fsdd/7_bob_5.wav");
  EXPECT_NE(error_of(tmp.path + "/fsdd").find("no training recording of the digit 7"), std::string::npos);
  for (const char* bad : {"seven.wav", "x_ann_1.wav", "3_ann_+1.wav", "3_ann_.wav", "3_ann_1 .wav"}) {
    { std::ofstream(tmp.path + "/fsdd/" + bad) << "x"; }
    EXPECT_NE(error_of(tmp.path + "/fsdd").find(std::string(bad) + ": expected a file name {digit}_{speaker}_{take}.wav"),
              std::string::npos) << bad;
    std::filesystem::remove(tmp.path + "/fsdd/" + bad);
  }
}

nlohmann::json av_hub() {
  return {{"architectures", {"PerceiverForMultimodalAutoencoding"}},
          {"_label_trainable_num_channels", 40},
          {"attention_probs_dropout_prob", 0.0},
          {"audio_samples_per_frame", 32},
          {"d_latents", 32},
          {"d_model", 405},
          {"image_size", 4},
          {"num_frames", 4},
          {"num_labels", 10},
          {"num_latents", 8},
          {"num_self_attends_per_block", 1},
          {"num_self_attention_heads", 4},
          {"num_cross_attention_heads", 1},
          {"output_num_channels", 24},
          {"output_shape", {1, 4, 16, 16}},
          {"samples_per_patch", 16}};
}

nlohmann::json av_run(const std::string& mnist, const std::string& fsdd, int epochs) {
  return {{"model", {{"type", "perceiver_io"}, {"hub_config", av_hub()}}},
          {"train", {{"epochs", epochs}, {"batch_size", 4}, {"lr", 3e-3}, {"warmup_steps", 2}, {"log_every", 1},
                     {"seed", 2}, {"label_smoothing", 0.0}, {"eval_batch_size", 3}}},
          {"data", {{"format", "moving_av"}, {"dir", mnist}, {"audio_dir", fsdd}, {"train_clips", 40}, {"test_clips", 5},
                    {"image_queries", 96}, {"audio_queries", 3}}}};
}

TEST(AvTrain, LearnsResumesAndEvaluates) {
  testing::TempDir tmp;
  testing::make_tiny_fashion_mnist(tmp.path + "/mnist", 60, 20);
  write_tiny_fsdd(tmp.path + "/fsdd");
  const train::RunConfig rc = train::parse_run_config(av_run(tmp.path + "/mnist", tmp.path + "/fsdd", 2));
  train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = tmp.path + "/full";
  const train::TrainResult full = train::run_training(rc, opt);
  ASSERT_FALSE(full.interrupted);
  EXPECT_EQ(full.steps, 20);
  const train::EvalResult& e = full.last_eval;
  EXPECT_EQ(e.count, 5) << "one label per held-out clip";
  EXPECT_EQ(e.sums.at("video_n"), 5.0 * 4 * 16 * 16 * 3) << "every pixel decoded";
  EXPECT_EQ(e.sums.at("audio_n"), 5.0 * 4 * 32);
  EXPECT_GT(data::psnr(e.mean_squared_error("video"), 1.0), 0.0);
  std::vector<double> losses;
  bool saw_psnr = false;
  {
    std::ifstream f(opt.out_dir + "/metrics.jsonl");
    for (std::string line; std::getline(f, line);) {
      const nlohmann::json r = nlohmann::json::parse(line);
      if (r["type"] == "train") losses.push_back(r["loss"]);
      if (r["type"] == "eval") saw_psnr = r.contains("test_video_psnr") && r.contains("test_audio_psnr");
    }
  }
  EXPECT_TRUE(saw_psnr);
  ASSERT_EQ(losses.size(), 20u);
  EXPECT_LT((losses[17] + losses[18] + losses[19]) / 3, 0.8 * (losses[0] + losses[1] + losses[2]) / 3)
      << "the reconstruction loss falls";

  // interrupted + resumed == uninterrupted, bit for bit
  testing::expect_resume_is_exact(rc, opt, tmp.path + "/full", tmp.path + "/split", 7);

  // `perceiver eval`'s path: the same clips and figures at another batch size
  const train::Checkpoint ck = train::read_checkpoint(tmp.path + "/full/model.safetensors");
  train::Task task(ck.config, train::Task::Mode::kEvaluate);
  task.model().load_state_dict(ck.params, "ck");
  task.model().train(false);
  const train::EvalResult r = task.evaluate(2);
  EXPECT_EQ(r.correct, e.correct);
  EXPECT_NEAR(r.mean_squared_error("video"), e.mean_squared_error("video"), 1e-6);
  EXPECT_NEAR(r.mean_squared_error("audio"), e.mean_squared_error("audio"), 1e-6);

  // OUT/samples: for each of the first 4 held-out clips its frames over their reconstructions
  // (PNG) and the soundtrack in and out (WAV), from the final weights
  ASSERT_EQ(full.samples.size(), 12u);
  for (int64_t i = 0; i < 4; ++i) {
    const std::string stem = tmp.path + "/full/samples/sample_0" + std::to_string(i);
    const models::TensorMap clip = task.test_batch(i, 1);
    const data::DecodedImage png = data::decode_image(io::read_file(stem + ".png"), stem);
    ASSERT_EQ(png.height, 2 * 16);
    ASSERT_EQ(png.width, 4 * 16);
    ASSERT_EQ(png.channels, 3);
    double top_err = 0, bottom_se = 0;
    const float* video = clip.at("inputs.image").f32();  // (1, T = 4, 3, 16, 16)
    for (int64_t f = 0; f < 4; ++f)
      for (int64_t y = 0; y < 16; ++y)
        for (int64_t x = 0; x < 16; ++x)
          for (int c = 0; c < 3; ++c) {
            const double v = video[((f * 3 + c) * 16 + y) * 16 + x];
            const auto at = [&](int64_t row) { return png.pixels[static_cast<size_t>((row * 64 + f * 16 + x) * 3 + c)] / 255.0; };
            top_err = std::max(top_err, std::abs(at(y) - v));
            bottom_se += (at(16 + y) - v) * (at(16 + y) - v);
          }
    EXPECT_LE(top_err, 0.5 / 255 + 1e-6) << "the top row is the input clip";
    // the bottom row is the reconstruction: its error is the clip's (less what clamping to [0, 1] saves)
    const double clip_mse = task.evaluate(1, i, 1).mean_squared_error("video");
    EXPECT_LE(bottom_se / (4 * 16 * 16 * 3), clip_mse + 1e-4) << stem;
    EXPECT_GE(bottom_se / (4 * 16 * 16 * 3), 0.5 * clip_mse - 1e-4) << stem;
    const data::Wav in = data::read_wav(stem + "_input.wav"), out = data::read_wav(stem + "_output.wav");
    EXPECT_EQ(in.sample_rate, 8000);
    ASSERT_EQ(in.samples.size(), 4u * 32);
    ASSERT_EQ(out.samples.size(), 4u * 32);
    for (size_t k = 0; k < in.samples.size(); ++k)
      ASSERT_NEAR(in.samples[k], clip.at("inputs.audio").f32()[k], 1.0 / 32767) << "the input soundtrack, sample " << k;
  }
}

// The training batch's targets are the clips' values at the subsampled points, whatever their
// order, and a batch split into slices keeps its points whole (batch size == audio queries).
TEST(AvTrain, SubsampledTargetsAlignAndSlicesKeepThePoints) {
  testing::TempDir tmp;
  testing::make_tiny_fashion_mnist(tmp.path + "/mnist", 60, 20);
  write_tiny_fsdd(tmp.path + "/fsdd");
  nlohmann::json j = av_run(tmp.path + "/mnist", tmp.path + "/fsdd", 1);
  j["data"]["audio_queries"] = 4;
  j["train"]["threads"] = 2;
  j["train"]["parallelism"] = "batch";
  const train::RunConfig rc = train::parse_run_config(j);
  train::Task task(rc);
  std::vector<int64_t> perm(40);
  Rng rng(9);
  const models::TensorMap batch = task.train_batch(perm, 0, 4, rng);
  const Tensor& video = batch.at("inputs.image");    // (4, 4, 3, 16, 16)
  const Tensor& audio = batch.at("inputs.audio");    // (4, 128, 1)
  const Tensor& pi = batch.at("subsampled_output_points.image");
  const Tensor& pa = batch.at("subsampled_output_points.audio");
  ASSERT_EQ(pi.shape(), (Shape{1, 96}));
  ASSERT_EQ(pa.shape(), (Shape{1, 4}));
  std::set<int32_t> distinct(pi.data<int32_t>(), pi.data<int32_t>() + 96);
  EXPECT_EQ(distinct.size(), 96u);
  for (int64_t i = 0; i < 4; ++i) {
    for (int64_t k = 0; k < 96; ++k) {
      const int64_t p = pi.data<int32_t>()[k], f = p / 256, yx = p % 256;
      for (int ch = 0; ch < 3; ++ch)
        ASSERT_EQ(batch.at("target.image").f32()[(i * 96 + k) * 3 + ch], video.f32()[((i * 4 + f) * 3 + ch) * 256 + yx]);
    }
    for (int64_t k = 0; k < 4; ++k)
      for (int64_t j2 = 0; j2 < 16; ++j2)
        ASSERT_EQ(batch.at("target.audio").f32()[(i * 4 + k) * 16 + j2], audio.f32()[i * 128 + pa.data<int32_t>()[k] * 16 + j2]);
  }
  // two slices of 2 clips each, batch 4 == audio_queries 4: steps run
  train::RunConfig short_run = rc;
  short_run.train.max_steps = 2;
  train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = tmp.path + "/sliced";
  EXPECT_EQ(train::run_training(short_run, opt).steps, 2);
}

TEST(AvTrain, RejectsMismatchedConfigs) {
  testing::TempDir tmp;
  const auto error_of = testing::task_error;
  nlohmann::json j = av_run(tmp.path + "/mnist", tmp.path + "/fsdd", 1);
  j["model"]["hub_config"]["output_shape"] = {1, 4, 16, 12};
  EXPECT_NE(error_of(j).find("square, with image_size = side / 4"), std::string::npos) << error_of(j);
  j = av_run(tmp.path + "/mnist", tmp.path + "/fsdd", 1);
  j["data"]["image_queries"] = 5000;
  EXPECT_NE(error_of(j).find("may not exceed the model's 1024 video"), std::string::npos) << error_of(j);
  j = av_run(tmp.path + "/mnist", tmp.path + "/fsdd", 1);
  j["model"]["hub_config"]["architectures"] = {"PerceiverForOpticalFlow"};
  EXPECT_NE(error_of(j).find("trains a PerceiverForMultimodalAutoencoding"), std::string::npos) << error_of(j);
  j = av_run(tmp.path + "/mnist", tmp.path + "/fsdd", 1);
  j["data"]["hflip"] = true;
  EXPECT_NE(error_of(j).find("do not apply to format \"moving_av\""), std::string::npos) << error_of(j);
}

}  // namespace
}  // namespace perceiver
