// data.streaming for image and WAV folders: the files are listed up front and each batch's
// examples decoded when it is read. Same examples, batches and so weights as the in-memory run,
// bit for bit (augmentation and speed perturbation included); nothing of the examples held in
// memory; a file that is removed or corrupted mid-run is an error naming it at that batch.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "perceiver/core/error.h"
#include "perceiver/data/image_codec.h"
#include "perceiver/data/wav.h"
#include "perceiver/io/atomic_file.h"
#include "perceiver/train/checkpoint.h"
#include "perceiver/train/task.h"
#include "perceiver/train/trainer.h"
#include "testing/tiny_data.h"

namespace perceiver {
namespace {

namespace fs = std::filesystem;

// 2 classes x 10 PNGs of different sizes (resized to 12 x 12 on read)
void write_images(const std::string& dir) {
  for (int c = 0; c < 2; ++c)
    for (int i = 0; i < 10; ++i) {
      const int64_t side = 9 + i;
      std::vector<uint8_t> px(static_cast<size_t>(side * side));
      for (int64_t k = 0; k < side * side; ++k)
        px[static_cast<size_t>(k)] = static_cast<uint8_t>(c ? (k % side) * 13 + i : 250 - (k / side) * 13 - i);
      const std::string path = dir + "/" + (c ? "stripes" : "fade") + "/" + std::to_string(i) + ".png";
      fs::create_directories(fs::path(path).parent_path());
      io::write_file_atomic(path, data::encode_png(px.data(), side, side, 1, path));
    }
}

// FSDD-style names: 2 digits x 2 speakers x 4 takes, lengths that need padding and cropping
void write_wavs(const std::string& dir) {
  fs::create_directories(dir);
  for (int d = 0; d < 2; ++d)
    for (const char* who : {"amy", "bob"})
      for (int take = 0; take < 4; ++take) {
        std::vector<float> x(200 + 37 * take);
        for (size_t k = 0; k < x.size(); ++k)
          x[k] = (0.3f + 0.1f * take) * std::sin((d ? 0.9f : 0.25f) * static_cast<float>(k) + (who[0] == 'a' ? 0 : 1));
        io::write_file_atomic(dir + "/" + std::to_string(d) + "_" + who + "_" + std::to_string(take) + ".wav",
                              data::encode_wav_pcm16(x, 8000));
      }
}

train::RunConfig image_run(const std::string& dir) {
  return train::parse_run_config(nlohmann::json::parse(R"({
    "model": {"image_size": [12, 12], "num_latents": 4, "d_latents": 16, "num_fourier_bands": 2,
              "self_attention_heads": 2, "self_attends_per_block": 1, "num_classes": 2, "dropout": 0.1},
    "train": {"epochs": 2, "batch_size": 4, "warmup_steps": 1, "threads": 1},
    "data": {"format": "image_folder", "dir": ")" + dir + R"(", "test_fraction": 0.3, "max_shift": 2, "hflip": true}})"));
}

train::RunConfig wav_run(const std::string& dir) {
  return train::parse_run_config(nlohmann::json::parse(R"({
    "model": {"image_size": [15], "in_channels": 32, "input_projection": 8, "input_projection_type": "log_power",
              "input_projection_init": "mel", "input_mean_normalization": true, "channel_masks": 1,
              "channel_mask_width": 2, "element_masks": 1, "element_mask_width": 3, "num_latents": 4,
              "d_latents": 16, "num_fourier_bands": 2, "self_attention_heads": 2, "self_attends_per_block": 1,
              "num_classes": 2},
    "train": {"epochs": 2, "batch_size": 4, "warmup_steps": 1, "threads": 1},
    "data": {"format": "wav", "dir": ")" + dir + R"(", "pattern": "{label}_{group}_{index}.wav", "length": 256,
             "frame": 32, "hop": 16, "test_group": "bob", "max_shift": 2, "speed_perturbation": [0.9, 1.1]}})"));
}

// Trains rc in memory and streamed; the checkpoints and evaluations must be identical.
void expect_streamed_equals_memory(train::RunConfig rc, const std::string& out) {
  train::TrainOptions opt;
  opt.quiet = true;
  rc.data.streaming = false;
  opt.out_dir = out + "/memory";
  train::run_training(rc, opt);
  rc.data.streaming = true;
  opt.out_dir = out + "/streamed";
  train::run_training(rc, opt);
  const auto a = train::read_checkpoint(out + "/memory/checkpoint.safetensors").params;
  const auto b = train::read_checkpoint(out + "/streamed/checkpoint.safetensors").params;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_EQ(t.to_vector(), b.at(name).to_vector()) << name;
  // the streamed task holds no examples; the in-memory one holds them all
  train::RunConfig memory_rc = rc;
  memory_rc.data.streaming = false;
  train::Task streamed(rc), memory(memory_rc);
  EXPECT_EQ(streamed.data_bytes(), 0u);
  EXPECT_GT(memory.data_bytes(), 0u);
  EXPECT_EQ(streamed.train_size(), memory.train_size());
  EXPECT_EQ(streamed.test_size(), memory.test_size());
  // every batch reads the same values, augmentation included
  std::vector<int64_t> perm(static_cast<size_t>(memory.train_size()));
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(perm.size() - 1 - i);
  Rng r1(9), r2(9);
  const models::TensorMap ba = memory.train_batch(perm, 1, 5, r1), bb = streamed.train_batch(perm, 1, 5, r2);
  EXPECT_EQ(ba.at("inputs").to_vector(), bb.at("inputs").to_vector());
  const auto ints = [](const Tensor& t) { return std::vector<int32_t>(t.data<int32_t>(), t.data<int32_t>() + t.numel()); };
  EXPECT_EQ(ints(ba.at("labels")), ints(bb.at("labels")));
  // evaluation of the held-out files is the same in both modes
  streamed.model().load_state_dict(a, "memory");
  memory.model().load_state_dict(a, "memory");
  streamed.model().train(false);
  memory.model().train(false);
  const train::EvalResult ea = memory.evaluate(3), eb = streamed.evaluate(3);
  EXPECT_GT(ea.count, 0);
  EXPECT_EQ(ea.correct, eb.correct);
  EXPECT_EQ(ea.loss, eb.loss);
  // the checkpoint's config keeps streaming (evaluation reads the files too)
  EXPECT_TRUE(train::read_checkpoint(out + "/streamed/checkpoint.safetensors").config.data.streaming);
}

// Reads every training example of a streamed task; expects an error naming `file`.
void expect_batch_error_names(const train::RunConfig& rc, const std::function<void()>& damage, const std::string& file,
                              const std::string& what) {
  train::Task task(rc);  // lists the files while they are intact
  damage();
  std::vector<int64_t> perm(static_cast<size_t>(task.train_size()));
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(i);
  Rng rng(1);
  try {
    for (int64_t first = 0; first < task.train_size(); first += 4)
      task.train_batch(perm, first, std::min<int64_t>(4, task.train_size() - first), rng);
    ADD_FAILURE() << "expected an error naming " << file;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST(FolderStreaming, ImageFolderTrainsExactlyAsInMemory) {
  testing::TempDir tmp;
  write_images(tmp.path + "/img");
  train::RunConfig rc = image_run(tmp.path + "/img");
  expect_streamed_equals_memory(rc, tmp.path);
  rc.data.streaming = true;
  // files corrupted after listing, then removed
  expect_batch_error_names(
      rc, [&] { for (int i = 0; i < 10; ++i) std::ofstream(tmp.path + "/img/stripes/" + std::to_string(i) + ".png") << "not a png"; },
      "/img/stripes/", "PNG");
  expect_batch_error_names(
      rc, [&] { for (int i = 0; i < 10; ++i) fs::remove(tmp.path + "/img/fade/" + std::to_string(i) + ".png"); },
      "/img/fade/", "open");
}

TEST(FolderStreaming, WavFolderTrainsExactlyAsInMemory) {
  testing::TempDir tmp;
  write_wavs(tmp.path + "/wav");
  train::RunConfig rc = wav_run(tmp.path + "/wav");
  expect_streamed_equals_memory(rc, tmp.path);
  // a training file rewritten at another rate after listing
  rc.data.streaming = true;
  expect_batch_error_names(
      rc,
      [&] {
        io::write_file_atomic(tmp.path + "/wav/1_amy_2.wav", data::encode_wav_pcm16(std::vector<float>(300, 0.1f), 16000));
      },
      "1_amy_2.wav", "sample rate 16000 Hz, expected 8000");
}

}  // namespace
}  // namespace perceiver
