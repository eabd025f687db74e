// The `perceiver` program: wrong flags, missing and corrupt files give a one-line error and a
// non-zero exit; train/eval/predict work end to end on tiny data; Ctrl-C saves a checkpoint.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <numeric>
#include <sstream>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "testing/shell.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/data/fashion_mnist.h"
#include "perceiver/data/image.h"
#include "perceiver/ops/activation.h"
#include "perceiver/data/wav.h"
#include "perceiver/data/image_codec.h"
#include "perceiver/io/atomic_file.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/train/checkpoint.h"
#include "testing/tiny_data.h"

namespace perceiver {
namespace {

using CliResult = testing::ShellResult;
using testing::run_cli;

void expect_fails(const std::string& args, const std::string& part) {
  CliResult r = run_cli(args);
  EXPECT_NE(r.code, 0) << args << "\n" << r.out;
  EXPECT_NE(r.out.find(part), std::string::npos) << args << "\n" << r.out;
}

std::string write_config(const std::string& dir, const std::string& data_dir, int epochs) {
  const std::string path = dir + "/cfg.json";
  std::ofstream(path) << R"({"model": {"num_latents": 4, "d_latents": 16, "num_fourier_bands": 2,
    "self_attention_heads": 2, "self_attends_per_block": 1},
    "train": {"epochs": )" << epochs << R"(, "batch_size": 8, "warmup_steps": 1},
    "data": {"dir": ")" << data_dir << R"("}})";
  return path;
}

TEST(Cli, HelpAndBadFlags) {
  CliResult h = run_cli("--help");
  EXPECT_EQ(h.code, 0);
  EXPECT_NE(h.out.find("train"), std::string::npos);
  for (const char* sub : {"train", "eval", "predict"}) EXPECT_EQ(run_cli(std::string(sub) + " --help").code, 0) << sub;
  expect_fails("", "a subcommand is required: train, eval, predict, run, grad, convert");
  expect_fails("fly", "not expected: fly");
  expect_fails("train --config", "--config");
  expect_fails("train --config /dev/null --bogus 1", "--bogus");
  expect_fails("train --config /nonexistent.json", "/nonexistent.json");
  expect_fails("eval --checkpoint /nonexistent.safetensors", "/nonexistent.safetensors");
  expect_fails("train --config /dev/null --threads -3", "--threads");
}

TEST(Cli, BadConfigAndCorruptFilesGiveOneLineErrors) {
  testing::TempDir tmp;
  const std::string cfg = tmp.path + "/bad.json";
  std::ofstream(cfg) << R"({"model": {"num_latent": 4}})";
  CliResult r = run_cli("train --config " + cfg + " --out " + tmp.path + "/o");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("perceiver: error: [config] " + cfg + ": model: unknown key 'num_latent'"), std::string::npos) << r.out;
  std::ofstream(tmp.path + "/junk.safetensors") << "not a safetensors file at all";
  expect_fails("eval --checkpoint " + tmp.path + "/junk.safetensors", "[safetensors]");
  // Corrupt IDX data: training names the file.
  testing::make_tiny_fashion_mnist(tmp.path, 16, 8);
  std::filesystem::resize_file(tmp.path + "/train-images-idx3-ubyte", 1000);
  r = run_cli("train --quiet --config " + write_config(tmp.path, tmp.path, 1) + " --out " + tmp.path + "/o2");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("train-images-idx3-ubyte"), std::string::npos) << r.out;
}

TEST(Cli, TrainEvalPredictEndToEnd) {
  testing::TempDir tmp;
  testing::make_tiny_fashion_mnist(tmp.path, 40, 20);
  const std::string out = tmp.path + "/run";
  CliResult t = run_cli("train --config " + write_config(tmp.path, tmp.path, 2) + " --out " + out);
  ASSERT_EQ(t.code, 0) << t.out;
  // eval of the exported weights gives the accuracy the trainer measured after the last epoch
  const size_t at = t.out.find("epoch 2/2: test accuracy ");
  ASSERT_NE(at, std::string::npos) << t.out;
  const std::string trained = t.out.substr(at + 25, 6);  // "0.xxxx"
  CliResult e = run_cli("eval --checkpoint " + out + "/model.safetensors --data-dir " + tmp.path);
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_NE(e.out.find("test accuracy: " + trained + " ("), std::string::npos) << "trainer said " << trained << "\n" << e.out;
  // pictures of outputs are for flow and autoencoding runs; a classifier's run says so
  const CliResult s = run_cli("eval --checkpoint " + out + "/model.safetensors --data-dir " + tmp.path + " --samples " +
                              tmp.path + "/samples");
  EXPECT_NE(s.code, 0);
  EXPECT_NE(s.out.find("--samples applies to optical-flow and multimodal-autoencoding runs"), std::string::npos) << s.out;
  EXPECT_FALSE(std::filesystem::exists(tmp.path + "/samples"));
  // the confusion matrix holds the 20 test examples, 2 per class (each row sums to 2)
  const size_t cm = e.out.find("confusion matrix");
  ASSERT_NE(cm, std::string::npos) << e.out;
  std::istringstream rows(e.out.substr(e.out.find('\n', e.out.find('\n', cm) + 1) + 1));
  std::string row;
  int row_count = 0;
  while (std::getline(rows, row) && row_count < 10) {
    std::istringstream cells(row.substr(14));  // after "%2lld %-11s"
    int sum = 0, v = 0;
    while (cells >> v) sum += v;
    EXPECT_EQ(sum, 2) << "row " << row_count << ": " << row;
    ++row_count;
  }
  EXPECT_EQ(row_count, 10);
  EXPECT_NE(e.out.find("Ankle boot"), std::string::npos);
  // per class: right / 2 for each of the 10 classes, under the class's full name
  const size_t pc = e.out.find("per-class accuracy:\n");
  ASSERT_NE(pc, std::string::npos) << e.out;
  EXPECT_NE(e.out.find(" 9 Ankle boot ", pc), std::string::npos) << e.out;
  EXPECT_NE(e.out.find("/2)\n", pc), std::string::npos) << e.out;
  // predict prints the classes and probabilities the model itself gives for the image
  Tensor img = Tensor::zeros({28, 28});
  for (int x = 0; x < 28; ++x) img.f32()[2 * 28 + x] = 1.0f;
  data::write_png_grey(tmp.path + "/x.png", img);
  CliResult p = run_cli("predict --checkpoint " + out + "/model.safetensors --top 2 " + tmp.path + "/x.png");
  ASSERT_EQ(p.code, 0) << p.out;
  {
    train::Checkpoint ckpt = train::read_checkpoint(out + "/model.safetensors");
    auto model = train::model_from_checkpoint(ckpt, "model.safetensors");
    autograd::NoGradGuard no_grad;
    const Tensor probs = ops::softmax(model->forward(data::load_image_grey(tmp.path + "/x.png", 28, 28).reshape({1, 28, 28})));
    std::vector<int> idx(10);
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](int a, int b) { return probs.f32()[a] > probs.f32()[b]; });
    const std::vector<std::string> names = data::fashion_mnist_class_names();
    char want[256];
    std::snprintf(want, sizeof(want), "x.png: %s %.4f, %s %.4f\n", names[idx[0]].c_str(), probs.f32()[idx[0]],
                  names[idx[1]].c_str(), probs.f32()[idx[1]]);
    EXPECT_NE(p.out.find(want), std::string::npos) << "expected " << want << "got " << p.out;
  }
  std::ofstream(tmp.path + "/broken.png") << "\x89PNG garbage";
  expect_fails("predict --checkpoint " + out + "/model.safetensors " + tmp.path + "/broken.png", "broken.png");

  // NaN weights (written by hand: the trainer never writes them) are refused, naming the tensor.
  io::SafetensorsFile f = io::load_safetensors(out + "/model.safetensors");
  const std::string name = f.tensors.begin()->first;
  Tensor w = f.tensors.begin()->second.clone();
  w.f32()[1] = std::nanf("");
  f.tensors[name] = w;
  const std::string bad = tmp.path + "/nan.safetensors";
  io::save_safetensors(bad, std::vector<std::pair<std::string, Tensor>>(f.tensors.begin(), f.tensors.end()), f.metadata);
  for (const std::string cmd : {"eval --data-dir " + tmp.path, "predict " + tmp.path + "/x.png"})
    expect_fails(cmd + " --checkpoint " + bad, "weight '" + name + "' holds 1 non-finite value (first: nan at element 1)");
  CliResult allowed = run_cli("eval --allow-nonfinite --data-dir " + tmp.path + " --checkpoint " + bad);
  EXPECT_EQ(allowed.code, 0) << allowed.out;
}

// Size before allocation: configs whose fields are each in range but whose model or run cannot
// fit this machine are refused with the estimate, before anything big is allocated.
TEST(Cli, OversizedModelsAndRunsAreRefusedBeforeAllocating) {
  testing::TempDir tmp;
  testing::make_tiny_fashion_mnist(tmp.path, 16, 8);
  auto config = [&](const std::string& model, int batch) {
    const std::string path = tmp.path + "/big.json";
    std::ofstream(path) << R"({"model": {)" << model << R"(}, "train": {"epochs": 1, "batch_size": )" << batch
                        << R"(}, "data": {"dir": ")" << tmp.path << R"("}})";
    return path;
  };
  // 2^20 latents x 2^16 channels: 256 GiB of latents alone.
  const auto start = std::chrono::steady_clock::now();
  expect_fails("train --config " + config(R"("num_latents": 1048576, "d_latents": 65536)", 8) + " --out " + tmp.path + "/a",
               "[memory] building the model of this run config needs more than");
  // Parameters that fit, activations that do not (2^20 latents per sample).
  CliResult r = run_cli("train --config " + config(R"("num_latents": 1048576, "d_latents": 64)", 16) + " --out " +
                        tmp.path + "/b");
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("[train] this run needs about "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("activations of a batch of 16 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--skip-memory-check"), std::string::npos) << r.out;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 20.0);
}

// The hostile files of the fuzzing campaign (tests/fuzz/regressions) through the program itself:
// each is a one-line error with exit code 1, never a crash, a hang or a silent success.
TEST(Cli, HostileFilesGiveOneLineErrors) {
  testing::TempDir tmp;
  testing::make_tiny_fashion_mnist(tmp.path, 16, 8);
  const std::string out = tmp.path + "/run";
  ASSERT_EQ(run_cli("train --config " + write_config(tmp.path, tmp.path, 1) + " --out " + out).code, 0);
  const std::string dir = std::string(PERCEIVER_SOURCE_DIR) + "/tests/fuzz/regressions/";
  for (const auto& e : std::filesystem::directory_iterator(dir + "image")) {
    const CliResult r = run_cli("predict --checkpoint " + out + "/model.safetensors " + e.path().string());
    if (e.path().filename() == "stb_pnm16_heap_overflow.pgm") {
      // hostile to stb_image, a valid 2 x 2 16-bit PGM to us (binary PGM/PPM are read): classified
      EXPECT_EQ(r.code, 0) << r.out;
      continue;
    }
    EXPECT_EQ(r.code, 1) << e.path() << "\n" << r.out;
    EXPECT_EQ(r.out.rfind("perceiver: error: [image] ", 0), 0u) << r.out;
    EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << r.out;
  }
  for (const char* name : {"deep_nesting_5000.json", "json_get_int_float_cast_overflow.json", "json_number_overflow_1e400.json"}) {
    const CliResult r = run_cli("train --config " + dir + "run_config/" + name + " --out " + tmp.path + "/x");
    EXPECT_EQ(r.code, 1) << name << "\n" << r.out;
    EXPECT_EQ(r.out.rfind("perceiver: error: [config] " + dir + "run_config/" + name + ": ", 0), 0u) << r.out;
    EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << r.out;
  }
  for (const auto& e : std::filesystem::directory_iterator(dir + "checkpoint")) {
    const CliResult r = run_cli("eval --checkpoint " + e.path().string() + " --data-dir " + tmp.path);
    EXPECT_EQ(r.code, 1) << e.path() << "\n" << r.out;
    EXPECT_EQ(r.out.rfind("perceiver: error: [", 0), 0u) << r.out;
  }
}

// Every run exports a hub-layout folder (export/: config.json + model.safetensors under HF names)
// that `perceiver run` loads through the one folder reader and that gives the training run's
// logits: the Perceiver classifier, ViT (whose export is an HF ViTForImageClassification), an
// HF Perceiver IO image classifier trained from its hub config (grey images repeated to RGB) and
// BoTNet (a timm-layout folder).
TEST(Cli, ExportedFolderGivesTheRunsLogits) {
  testing::TempDir tmp;
  testing::make_tiny_fashion_mnist(tmp.path, 24, 8);
  const std::string data = R"("data": {"dir": ")" + tmp.path + R"("}})";
  const std::string vit_cfg = tmp.path + "/vit.json", pio_cfg = tmp.path + "/pio.json",
                    bot_cfg = tmp.path + "/botnet.json";
  std::ofstream(bot_cfg) << R"({"model": {"type": "botnet", "image_size": 28, "in_channels": 1, "num_classes": 10,
    "stem_chs": 8, "channels": [8, 8, 16, 16], "depths": [1, 1, 2, 1], "num_heads": 2},
    "train": {"epochs": 1, "batch_size": 8, "warmup_steps": 1}, )" << data;
  std::ofstream(vit_cfg) << R"({"model": {"type": "vit", "image_size": 28, "patch_size": 7, "hidden_size": 16,
    "num_attention_heads": 2, "num_hidden_layers": 1, "intermediate_size": 32},
    "train": {"epochs": 1, "batch_size": 8, "warmup_steps": 1}, )" << data;
  std::ofstream(pio_cfg) << R"({"model": {"type": "perceiver_io", "in_channels": 1, "hub_config": {
      "architectures": ["PerceiverForImageClassificationLearned"], "image_size": 28, "num_latents": 4,
      "d_latents": 16, "num_self_attends_per_block": 1, "num_self_attention_heads": 2,
      "num_cross_attention_heads": 1, "qk_channels": 8, "v_channels": 16, "num_labels": 10}},
    "train": {"epochs": 1, "batch_size": 8, "warmup_steps": 1}, )" << data;
  Tensor images = Tensor::zeros({2, 28, 28});
  for (int64_t i = 0; i < images.numel(); ++i) images.f32()[i] = static_cast<float>((i * 37) % 101) / 100.0f;
  Tensor rgb = Tensor::zeros({2, 3, 28, 28});  // the HF layout of the grey images
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t c = 0; c < 3; ++c)
      std::copy(images.f32() + b * 784, images.f32() + (b + 1) * 784, rgb.f32() + (b * 3 + c) * 784);
  struct Case {
    std::string name, cfg, architecture, input;
    Tensor x;
  };
  for (const Case& k : std::vector<Case>{
           {"perceiver", write_config(tmp.path, tmp.path, 1), "PerceiverClassifier", "inputs", images},
           {"vit", vit_cfg, "ViTForImageClassification", "pixel_values", images.reshape({2, 1, 28, 28})},
           {"perceiver_io", pio_cfg, "PerceiverForImageClassificationLearned", "inputs", rgb},
           {"botnet", bot_cfg, "botnet26t_256", "pixel_values", images.reshape({2, 1, 28, 28})}}) {
    const std::string out = tmp.path + "/" + k.name;
    const CliResult t = run_cli("train --quiet --config " + k.cfg + " --out " + out);
    ASSERT_EQ(t.code, 0) << k.name << "\n" << t.out;
    const nlohmann::json hub = nlohmann::json::parse(io::read_file(out + "/export/config.json"));
    // HF folders name the class in "architectures", timm folders (BoTNet) in "architecture"
    EXPECT_EQ(hub.contains("architectures") ? hub.at("architectures")[0] : hub.at("architecture"), k.architecture);
    // in-process logits of the run's final weights, as inference computes them (eval mode, no
    // gradients: BoTNet's BatchNorm uses its running statistics, folded into the convolutions)
    auto model = train::model_from_checkpoint(train::read_checkpoint(out + "/model.safetensors"), out);
    model->train(false);
    autograd::NoGradGuard no_grad;
    const Tensor want = model->forward(images);
    // through the exported folder and `perceiver run`
    const std::string in = tmp.path + "/" + k.name + "_in.safetensors", res = tmp.path + "/" + k.name + "_out.safetensors";
    io::save_safetensors(in, {{k.input, k.x}});
    const CliResult r = run_cli("run --logits-only --model " + out + "/export --inputs " + in + " --outputs " + res);
    ASSERT_EQ(r.code, 0) << r.out;
    const Tensor got = io::load_safetensors(res).tensors.at("logits");
    ASSERT_EQ(got.shape(), want.shape()) << k.name;
    for (int64_t i = 0; i < got.numel(); ++i) EXPECT_EQ(got.f32()[i], want.f32()[i]) << k.name << " logit " << i;
    if (k.name != "botnet") continue;
    // `classify` reads the exported BoTNet as trained: its pretrained_cfg (crop_pct 1, mean 0,
    // std 1, one channel) turns a 28 x 28 grey PNG into v / 255
    std::vector<uint8_t> px(784);
    Tensor x = Tensor::empty({1, 28, 28});
    for (size_t i = 0; i < px.size(); ++i) {
      px[i] = static_cast<uint8_t>((i * 37) % 256);
      x.f32()[i] = static_cast<float>(px[i]) / 255.0f;
    }
    const std::string png = tmp.path + "/item.png";
    io::write_file_atomic(png, data::encode_png(px.data(), 28, 28, 1, png));
    const Tensor probs = ops::softmax(model->forward(x));
    const int64_t top = std::max_element(probs.f32(), probs.f32() + 10) - probs.f32();
    char line[128];
    std::snprintf(line, sizeof line, "  %.4f  %lld  LABEL_%lld\n", probs.f32()[top], static_cast<long long>(top),
                  static_cast<long long>(top));
    const CliResult c = run_cli("classify --top 1 --model " + out + "/export " + png);
    ASSERT_EQ(c.code, 0) << c.out;
    EXPECT_EQ(c.out, png + "\n" + line);
  }
}

// Training from an image folder (class subfolders, any image size) and from a WAV folder (FSDD
// file names) runs end to end; eval reads the same data through the run's config.
TEST(Cli, TrainsOnImageAndWavFolders) {
  testing::TempDir tmp;
  for (int i = 0; i < 12; ++i)
    for (int c = 0; c < 2; ++c) {
      const int64_t side = 20 + 3 * i;  // sizes differ: resized to the model's 28 x 28
      std::vector<uint8_t> px(static_cast<size_t>(side * side));
      for (int64_t k = 0; k < side * side; ++k) px[static_cast<size_t>(k)] = static_cast<uint8_t>(c ? (k % side) * 9 : 255 - (k / side) * 9);
      const std::string dir = tmp.path + "/img/" + (c ? "stripes" : "fade");
      std::filesystem::create_directories(dir);
      const std::string path = dir + "/" + std::to_string(i) + ".png";
      io::write_file_atomic(path, data::encode_png(px.data(), side, side, 1, path));
    }
  const std::string img_cfg = tmp.path + "/img.json";
  std::ofstream(img_cfg) << R"({"model": {"num_latents": 4, "d_latents": 16, "num_fourier_bands": 2, "self_attention_heads": 2,
    "self_attends_per_block": 1, "num_classes": 2}, "train": {"epochs": 2, "batch_size": 8, "warmup_steps": 1},
    "data": {"format": "image_folder", "dir": ")" << tmp.path << R"(/img", "test_fraction": 0.25}})";
  CliResult r = run_cli("train --config " + img_cfg + " --out " + tmp.path + "/img_run");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("training examples"), std::string::npos) << r.out;
  r = run_cli("eval --checkpoint " + tmp.path + "/img_run/model.safetensors");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("stripes"), std::string::npos) << r.out;
  // a Perceiver IO classifier takes its square image size from its hub config
  const std::string pio_cfg = tmp.path + "/pio.json";
  std::ofstream(pio_cfg) << R"({"model": {"type": "perceiver_io", "in_channels": 1, "hub_config": {
    "architectures": ["PerceiverForImageClassificationLearned"], "image_size": 12, "num_latents": 4, "d_latents": 16,
    "d_model": 16, "num_blocks": 1, "num_self_attends_per_block": 1, "num_self_attention_heads": 2,
    "num_cross_attention_heads": 1, "id2label": {"0": "fade", "1": "stripes"}}},
    "train": {"epochs": 1, "batch_size": 8, "warmup_steps": 1},
    "data": {"format": "image_folder", "dir": ")" << tmp.path << R"(/img", "test_fraction": 0.25}})";
  r = run_cli("train --config " + pio_cfg + " --out " + tmp.path + "/pio_run");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("finished after"), std::string::npos) << r.out;

  std::filesystem::create_directories(tmp.path + "/wav");
  for (int d = 0; d < 2; ++d)
    for (int take = 0; take < 6; ++take) {
      std::vector<float> x(300 + 7 * take);
      for (size_t k = 0; k < x.size(); ++k) x[k] = 0.5f * std::sin((d ? 0.9f : 0.2f) * static_cast<float>(k));
      io::write_file_atomic(tmp.path + "/wav/" + std::to_string(d) + "_amy_" + std::to_string(take) + ".wav",
                            data::encode_wav_pcm16(x, 8000));
    }
  const std::string wav_cfg = tmp.path + "/wav.json";
  std::ofstream(wav_cfg) << R"({"model": {"image_size": [16], "in_channels": 16, "input_projection": 8, "num_latents": 4,
    "d_latents": 16, "num_fourier_bands": 2, "self_attention_heads": 2, "self_attends_per_block": 1, "num_classes": 2},
    "train": {"epochs": 2, "batch_size": 4, "warmup_steps": 1},
    "data": {"format": "wav", "dir": ")" << tmp.path << R"(/wav", "pattern": "{label}_{group}_{index}.wav",
             "length": 256, "frame": 16, "test_index_range": [0, 1], "max_shift": 2}})";
  r = run_cli("train --config " + wav_cfg + " --out " + tmp.path + "/wav_run");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("8 training examples, 4 test examples"), std::string::npos) << r.out;
  r = run_cli("eval --checkpoint " + tmp.path + "/wav_run/model.safetensors");
  ASSERT_EQ(r.code, 0) << r.out;
  // the fixed mel front end through --set: its filterbank (buffers) travels in the checkpoint, so
  // eval loads it strictly; a model laid out for another sample rate than the data's is refused
  const std::string mel = " --set model.input_projection_type=log_power --set model.input_projection_init=mel"
                          " --set model.input_projection_trainable=false";
  r = run_cli("train --quiet --config " + wav_cfg + mel + " --out " + tmp.path + "/wav_mel");
  ASSERT_EQ(r.code, 0) << r.out;
  r = run_cli("eval --checkpoint " + tmp.path + "/wav_mel/model.safetensors");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("test accuracy"), std::string::npos) << r.out;
  r = run_cli("train --quiet --config " + wav_cfg + mel + " --set model.sample_rate=16000 --out " + tmp.path + "/wav_16k");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("model.sample_rate (16000 Hz, where the mel filterbank is laid out) must equal data.sample_rate (8000 Hz)"),
            std::string::npos) << r.out;
  r = run_cli("train --quiet --config " + wav_cfg + " --set train.epochs --out " + tmp.path + "/wav_bad");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("--set train.epochs: expected KEY=VALUE"), std::string::npos) << r.out;
}

// `perceiver tag` on a tagged_text run's export: every word of the text gets its class, laid out
// as in training; texts that do not fit and other model classes are refused.
TEST(Cli, TagsTheWordsOfATextWithATrainedTagger) {
  testing::TempDir tmp;
  {
    std::ofstream f(tmp.path + "/tags.jsonl");
    const char* words[][2] = {{"red", "COLOUR"}, {"green", "COLOUR"}, {"blue", "COLOUR"}, {"cat", "ANIMAL"},
                              {"dog", "ANIMAL"}, {"owl", "ANIMAL"},   {"the", "O"},       {"and", "O"}};
    for (int i = 0; i < 120; ++i) {
      std::string tokens, tags;
      for (int k = 0; k < 4; ++k) {
        const auto& w = words[(i * 5 + k * 3 + i / 8) % 8];
        tokens += std::string(k ? ", " : "") + "\"" + w[0] + "\"";
        tags += std::string(k ? ", " : "") + "\"" + w[1] + "\"";
      }
      f << "{\"tokens\": [" << tokens << "], \"tags\": [" << tags << "]}\n";
    }
  }
  const std::string cfg = tmp.path + "/tag.json";
  std::ofstream(cfg) << R"({"model": {"type": "perceiver_io", "hub_config": {"architectures": ["PerceiverForTokenClassification"],
      "d_model": 16, "d_latents": 24, "num_latents": 8, "num_self_attends_per_block": 1, "num_self_attention_heads": 2,
      "num_cross_attention_heads": 1, "qk_channels": 16, "v_channels": 24, "max_position_embeddings": 24, "num_labels": 3}},
    "train": {"epochs": 10, "batch_size": 12, "lr": 3e-3, "warmup_steps": 2, "seed": 4},
    "data": {"format": "tagged_text", "dir": ")" << tmp.path << R"(/tags.jsonl", "seq_len": 24, "test_fraction": 0.2}})";
  CliResult r = run_cli("train --quiet --config " + cfg + " --out " + tmp.path + "/run");
  ASSERT_EQ(r.code, 0) << r.out;
  r = run_cli("tag --model " + tmp.path + "/run/export \"the  red cat\"");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("the\tO\t"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("red\tCOLOUR\t"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cat\tANIMAL\t"), std::string::npos) << r.out;
  r = run_cli("tag --model " + tmp.path + "/run/export \"" + std::string(30, 'x') + "\"");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("[tag] the text needs 32 ids"), std::string::npos) << r.out;
  r = run_cli("tag --model " + tmp.path + "/run/export \" \"");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("no tokens"), std::string::npos) << r.out;
}

// Fine-tuning: --init starts from a model folder; a head of another size is re-initialised and
// named, every other weight starts as in the folder; a folder with nothing in common and --resume
// are refused.
TEST(Cli, InitFineTunesFromAModelFolder) {
  testing::TempDir tmp;
  testing::make_tiny_fashion_mnist(tmp.path, 16, 8);
  const std::string base = tmp.path + "/base";
  ASSERT_EQ(run_cli("train --quiet --config " + write_config(tmp.path, tmp.path, 1) + " --out " + base).code, 0);
  const std::string cfg = tmp.path + "/ft.json";
  std::ofstream(cfg) << R"({"model": {"num_latents": 4, "d_latents": 16, "num_fourier_bands": 2,
    "self_attention_heads": 2, "self_attends_per_block": 1, "num_classes": 12},
    "train": {"epochs": 1, "batch_size": 8, "warmup_steps": 1, "lr": 1e-12, "weight_decay": 0, "max_steps": 1},
    "data": {"dir": ")" << tmp.path << R"("}})";
  const CliResult r = run_cli("train --config " + cfg + " --out " + tmp.path + "/ft --init " + base + "/export");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("init: re-initialised perceiver.decoder.final_layer.weight ([10, 16] float32 in the folder, [12, 16] "
                       "float32 in this model)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("init: re-initialised perceiver.decoder.final_layer.bias"), std::string::npos) << r.out;
  const auto before = io::load_safetensors(base + "/export/model.safetensors").tensors;
  const auto after = train::read_checkpoint(tmp.path + "/ft/checkpoint.safetensors").params;
  const Tensor& a = before.at("perceiver.embeddings.latents");
  const Tensor& b = after.at("perceiver.embeddings.latents");
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_NEAR(a.f32()[i], b.f32()[i], 1e-6) << i;  // lr 1e-12: unchanged
  expect_fails("train --config " + cfg + " --out " + tmp.path + "/ft --resume --init " + base + "/export",
               "give one of --init and --resume");
  const std::string vit_cfg = tmp.path + "/vit.json";
  std::ofstream(vit_cfg) << R"({"model": {"type": "vit", "image_size": 28, "patch_size": 14, "hidden_size": 8,
    "num_attention_heads": 1, "num_hidden_layers": 1, "intermediate_size": 8}, "train": {"epochs": 1, "batch_size": 8},
    "data": {"dir": ")" << tmp.path << R"("}})";
  expect_fails("train --config " + vit_cfg + " --out " + tmp.path + "/v --init " + base + "/export",
               "no tensor of this PerceiverClassifier folder matches the ViTForImageClassification of the run");
}

TEST(Cli, ConvertsTorchBinAndRefusesMaliciousPickles) {
  testing::TempDir tmp;
  const std::string data = std::string(PERCEIVER_SOURCE_DIR) + "/tests/data/torch_bin/";
  CliResult c = run_cli("convert " + data + "float32.bin " + tmp.path + "/out.safetensors");
  ASSERT_EQ(c.code, 0) << c.out;
  io::SafetensorsFile got = io::load_safetensors(tmp.path + "/out.safetensors");
  io::SafetensorsFile want = io::load_safetensors(data + "float32.safetensors");
  ASSERT_EQ(got.tensors.size(), want.tensors.size());
  for (auto& [name, t] : want.tensors) EXPECT_EQ(got.tensors.at(name).to_vector(), t.to_vector()) << name;
  expect_fails("convert " + data + "evil_os_system.bin " + tmp.path + "/evil.safetensors", "refused global \"os.system\"");
  EXPECT_FALSE(std::filesystem::exists(tmp.path + "/evil.safetensors"));
}

// Kills and reaps a forked child unless the test reaped it: a failed ASSERT that leaves the test
// early must not leave a 1000-epoch training run behind.
class ChildProcess {
 public:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  ~ChildProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  int wait() {  // the exit status; the child is reaped
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_;
};

TEST(Cli, InterruptSavesACheckpointAndExitsCleanly) {
  testing::TempDir tmp;
  testing::make_tiny_fashion_mnist(tmp.path, 400, 10);
  const std::string out = tmp.path + "/run";
  const std::string cfg = write_config(tmp.path, tmp.path, 1000);
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string o = "--out=" + out, c = "--config=" + cfg;
    execl(PERCEIVER_CLI_PATH, PERCEIVER_CLI_PATH, "train", "--quiet", c.c_str(), o.c_str(), (char*)nullptr);
    _exit(127);
  }
  ChildProcess child(pid);
  // Wait until training has written its first checkpoint (end of epoch 1), then interrupt.
  const std::string ckpt = out + "/checkpoint.safetensors";
  for (int i = 0; i < 600 && !std::filesystem::exists(ckpt); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(std::filesystem::exists(ckpt));
  kill(pid, SIGINT);
  const int status = child.wait();
  ASSERT_TRUE(WIFEXITED(status)) << "killed by a signal instead of exiting";
  EXPECT_EQ(WEXITSTATUS(status), 130);
  train::Checkpoint ck = train::read_checkpoint(ckpt);  // complete and valid
  EXPECT_GT(ck.step, 0);
  for (const auto& entry : std::filesystem::directory_iterator(out))
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << "left a temporary file: " << entry.path();
}

}  // namespace
}  // namespace perceiver
