// Training end to end on a tiny generated dataset: an interrupted + resumed run ends with
// exactly the weights of an uninterrupted run (its first part with activation checkpointing,
// which must not change a single number; dropout and drop path on); checkpoints are complete and
// validated; the evaluation cadence.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "perceiver/io/atomic_file.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/models/image_classifier.h"
#include "perceiver/ops/reduce.h"
#include "perceiver/train/checkpoint.h"
#include "perceiver/train/trainer.h"
#include "testing/tiny_data.h"

namespace perceiver {
namespace {

train::RunConfig tiny_run(const std::string& data_dir) {
  train::RunConfig rc = train::parse_run_config(nlohmann::json::parse(R"({
    "model": {"num_latents": 4, "d_latents": 16, "num_fourier_bands": 2, "self_attention_heads": 2,
              "self_attends_per_block": 1, "dropout": 0.1, "drop_path": 0.2},
    "train": {"epochs": 2, "batch_size": 16, "warmup_steps": 2, "log_every": 1, "seed": 5},
    "data": {"max_shift": 2, "hflip": true}})"));
  rc.data.dir = data_dir;
  return rc;
}

TEST(TrainResume, InterruptedPlusResumedEqualsUninterrupted) {
  testing::TempDir tmp;
  testing::make_tiny_fashion_mnist(tmp.path, 56, 20);  // 4 steps per epoch (last one partial)
  train::RunConfig rc = tiny_run(tmp.path);
  train::TrainOptions opt;
  opt.quiet = true;

  opt.out_dir = tmp.path + "/full";
  train::TrainResult full = train::run_training(rc, opt);
  EXPECT_FALSE(full.interrupted);
  EXPECT_EQ(full.steps, 8);
  EXPECT_EQ(full.last_eval.count, 20);

  opt.out_dir = tmp.path + "/split";
  train::RunConfig first = rc;
  first.train.max_steps = 3;  // stops mid-epoch, like Ctrl-C
  first.train.activation_checkpointing = true;  // recomputes in backward: the same numbers
  train::TrainResult part = train::run_training(first, opt);
  EXPECT_TRUE(part.interrupted);
  EXPECT_EQ(part.steps, 3);
  EXPECT_EQ(train::read_checkpoint(opt.out_dir + "/checkpoint.safetensors").step, 3);
  opt.resume = true;
  train::TrainResult rest = train::run_training(rc, opt);
  EXPECT_FALSE(rest.interrupted);
  EXPECT_EQ(rest.steps, 8);

  io::SafetensorsFile a = io::load_safetensors(tmp.path + "/full/model.safetensors");
  io::SafetensorsFile b = io::load_safetensors(tmp.path + "/split/model.safetensors");
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (auto& [name, t] : a.tensors) {
    ASSERT_TRUE(b.tensors.count(name)) << name;
    EXPECT_EQ(t.to_vector(), b.tensors.at(name).to_vector()) << name << " differs after resume";
  }
  // The optimizer state was saved with the checkpoint too.
  train::Checkpoint ck = train::read_checkpoint(tmp.path + "/split/checkpoint.safetensors");
  EXPECT_EQ(ck.step, 8);
  EXPECT_FALSE(ck.optimizer_state.empty());
  // Metrics were appended as JSON lines.
  std::ifstream metrics(tmp.path + "/split/metrics.jsonl");
  std::string line;
  int evals = 0;
  int64_t last_train_step = 0;
  while (std::getline(metrics, line)) {
    const nlohmann::json rec = nlohmann::json::parse(line);
    evals += rec["type"] == "eval";
    if (rec["type"] == "train") {
      EXPECT_GT(rec["step"].get<int64_t>(), last_train_step) << "duplicate or out-of-order metrics";
      last_train_step = rec["step"].get<int64_t>();
    }
  }
  EXPECT_EQ(evals, 2);
  EXPECT_EQ(last_train_step, 8);
}

// train.eval_every: the test set after every eval_every-th epoch and after the last; how often it
// is evaluated does not change a single weight.
TEST(TrainResume, EvalEveryEvaluatesThoseEpochsAndTheLast) {
  testing::TempDir tmp;
  testing::make_tiny_fashion_mnist(tmp.path, 32, 12);  // 2 steps per epoch
  train::RunConfig rc = tiny_run(tmp.path);
  rc.train.epochs = 5;
  train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = tmp.path + "/every";
  train::run_training(rc, opt);
  rc.train.eval_every = 2;
  opt.out_dir = tmp.path + "/sparse";
  const train::TrainResult sparse = train::run_training(rc, opt);
  EXPECT_EQ(sparse.last_eval.count, 12);
  std::vector<int> eval_epochs;
  std::ifstream metrics(tmp.path + "/sparse/metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) {
    const nlohmann::json rec = nlohmann::json::parse(line);
    if (rec["type"] == "eval") eval_epochs.push_back(rec["epoch"].get<int>());
  }
  EXPECT_EQ(eval_epochs, (std::vector<int>{2, 4, 5}));
  EXPECT_EQ(sparse.last_eval_epoch, 5);
  io::SafetensorsFile a = io::load_safetensors(tmp.path + "/every/model.safetensors");
  io::SafetensorsFile b = io::load_safetensors(tmp.path + "/sparse/model.safetensors");
  for (auto& [name, t] : a.tensors) EXPECT_EQ(t.to_vector(), b.tensors.at(name).to_vector()) << name;

  // stopped after epoch 3 of 5: the last evaluation is epoch 2's and says so; resuming with
  // another cadence is allowed and ends with the same weights
  opt.out_dir = tmp.path + "/stopped";
  train::RunConfig first = rc;
  first.train.max_steps = 6;
  const train::TrainResult part = train::run_training(first, opt);
  EXPECT_TRUE(part.interrupted);
  EXPECT_EQ(part.last_eval_epoch, 2);
  EXPECT_EQ(part.last_eval.count, 12);
  train::RunConfig rest = rc;
  rest.train.eval_every = 1;
  opt.resume = true;
  const train::TrainResult resumed = train::run_training(rest, opt);
  EXPECT_FALSE(resumed.interrupted);
  EXPECT_EQ(resumed.last_eval_epoch, 5);
  io::SafetensorsFile c = io::load_safetensors(tmp.path + "/stopped/model.safetensors");
  for (auto& [name, t] : a.tensors) EXPECT_EQ(t.to_vector(), c.tensors.at(name).to_vector()) << name << " after resume";
}

// train.ema_decay: evaluation and model.safetensors use the moving average, the checkpoint keeps
// the live weights and the average, and an interrupted + resumed run still ends bit-identical.
TEST(TrainResume, EmaRunExportsTheAverageAndResumesIdentically) {
  testing::TempDir tmp;
  testing::make_tiny_fashion_mnist(tmp.path, 56, 20);
  train::RunConfig rc = tiny_run(tmp.path);
  rc.train.ema_decay = 0.9f;
  train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = tmp.path + "/full";
  train::run_training(rc, opt);
  opt.out_dir = tmp.path + "/split";
  train::RunConfig first = rc;
  first.train.max_steps = 5;
  train::run_training(first, opt);
  opt.resume = true;
  train::run_training(rc, opt);

  io::SafetensorsFile a = io::load_safetensors(tmp.path + "/full/model.safetensors");
  io::SafetensorsFile b = io::load_safetensors(tmp.path + "/split/model.safetensors");
  const train::Checkpoint ck = train::read_checkpoint(tmp.path + "/full/checkpoint.safetensors");
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  int differs_from_live = 0;
  for (auto& [name, t] : a.tensors) {
    ASSERT_TRUE(b.tensors.count(name)) << name;
    EXPECT_EQ(t.to_vector(), b.tensors.at(name).to_vector()) << name << " differs after resume";
    // the exported weights are the checkpoint's averages, not its live weights
    ASSERT_TRUE(ck.optimizer_state.count(name + ".ema")) << name;
    EXPECT_EQ(t.to_vector(), ck.optimizer_state.at(name + ".ema").to_vector()) << name;
    differs_from_live += t.to_vector() != ck.params.at(name).to_vector();
  }
  EXPECT_GT(differs_from_live, 0);
  // a run without the average cannot resume this checkpoint: the setting is named
  train::RunConfig plain = rc;
  plain.train.ema_decay = 0.0f;
  opt.out_dir = tmp.path + "/full";
  try {
    train::run_training(plain, opt);
    ADD_FAILURE() << "resumed with another ema_decay";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train.ema_decay"), std::string::npos) << e.what();
  }
}

// A huge learning rate without clipping: the update overflows (AdamW's squared-gradient average
// becomes Inf although the gradient is finite) or the loss explodes. Training stops with an
// error naming the tensor, or warns of divergence; either way every checkpoint on disk holds only
// finite values and resumes.
TEST(TrainResume, OverflowStopsBeforeACheckpointAndDivergenceIsReported) {
  testing::TempDir tmp;
  testing::make_tiny_fashion_mnist(tmp.path, 64, 16);
  train::RunConfig rc = tiny_run(tmp.path);
  rc.train.lr = 10.0f;
  rc.train.weight_decay = 10.0f;
  rc.train.grad_clip = 0.0f;
  rc.train.checkpoint_every = 1;
  rc.train.epochs = 40;
  train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = tmp.path + "/overflow";
  std::string error;
  train::TrainResult r;
  try {
    r = train::run_training(rc, opt);
  } catch (const Error& e) {
    error = e.what();
  }
  EXPECT_NE(error.find("[train] step "), std::string::npos) << error;
  EXPECT_NE(error.find("the update overflowed: optimizer state "), std::string::npos) << error;
  EXPECT_NE(error.find("exp_avg_sq holds "), std::string::npos) << error;
  EXPECT_NE(error.find("is intact"), std::string::npos) << error;
  const std::string ckpt = opt.out_dir + "/checkpoint.safetensors";
  ASSERT_TRUE(std::filesystem::exists(ckpt));
  for (const auto& [name, t] : io::load_safetensors(ckpt).tensors)
    EXPECT_EQ(ops::count_nonfinite(t).count, 0) << name << " in the checkpoint is non-finite";
  EXPECT_NO_THROW(train::read_checkpoint(ckpt));

  // Without weight decay the loss explodes instead: a divergence warning, in metrics.jsonl too.
  rc.train.weight_decay = 0.0f;
  rc.train.lr = 3.0f;
  rc.train.epochs = 3;
  rc.train.checkpoint_every = 0;
  opt.out_dir = tmp.path + "/diverge";
  r = train::run_training(rc, opt);
  EXPECT_TRUE(r.diverged);
  std::ifstream metrics(opt.out_dir + "/metrics.jsonl");
  std::string line;
  bool warned = false;
  while (std::getline(metrics, line)) warned = warned || line.find("\"divergence\"") != std::string::npos;
  EXPECT_TRUE(warned);
}

TEST(TrainResume, CheckpointsWithNonFiniteValuesAreNeverWritten) {
  testing::TempDir tmp;
  train::RunConfig rc = tiny_run(tmp.path);
  auto model = models::make_image_classifier(rc.model, 1);
  const std::string path = tmp.path + "/ckpt.safetensors";
  train::save_checkpoint(path, *model, nullptr, 1, rc);
  const std::string before = io::read_file(path);
  model->visit_parameters([](const std::string& name, Tensor& p) {
    if (name.find("latents") != std::string::npos) p.f32()[3] = std::nanf("");
  });
  try {
    train::save_checkpoint(path, *model, nullptr, 2, rc);
    FAIL() << "a checkpoint with NaN was written";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("refusing to write " + path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("latents' holds 1 non-finite value (first: nan at element 3)"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(io::read_file(path), before);
}

TEST(TrainResume, ChangedTrainingSettingsAndOccupiedOutputDirAreRefused) {
  testing::TempDir tmp;
  testing::make_tiny_fashion_mnist(tmp.path, 32, 10);
  train::RunConfig rc = tiny_run(tmp.path);
  rc.train.max_steps = 1;
  train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = tmp.path + "/run";
  train::run_training(rc, opt);
  // A fresh run into the same directory would destroy it.
  try {
    train::run_training(rc, opt);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--resume"), std::string::npos) << e.what();
  }
  opt.force = true;
  EXPECT_NO_THROW(train::run_training(rc, opt));
  opt.force = false;
  // Resuming with another batch size or optimizer would silently change the run.
  opt.resume = true;
  train::RunConfig other = rc;
  other.train.batch_size = 8;
  other.train.optimizer = "lamb";
  try {
    train::run_training(other, opt);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("train.batch_size (checkpoint 16, now 8)"), std::string::npos) << m;
    EXPECT_NE(m.find("train.optimizer"), std::string::npos) << m;
  }
  // Threads, logging and max_steps may change.
  train::RunConfig ok = rc;
  ok.train.max_steps = 2;
  ok.train.threads = 1;
  ok.train.log_every = 7;
  EXPECT_NO_THROW(train::run_training(ok, opt));
}

TEST(TrainResume, ResumeWithADifferentModelIsRefused) {
  testing::TempDir tmp;
  testing::make_tiny_fashion_mnist(tmp.path, 32, 10);
  train::RunConfig rc = tiny_run(tmp.path);
  rc.train.max_steps = 1;
  train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = tmp.path + "/run";
  train::run_training(rc, opt);
  rc.model["num_latents"] = 8;
  opt.resume = true;
  try {
    train::run_training(rc, opt);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model config differs"), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, CorruptAndForeignFilesGiveClearErrors) {
  testing::TempDir tmp;
  testing::make_tiny_fashion_mnist(tmp.path, 16, 10);
  train::RunConfig rc = tiny_run(tmp.path);
  rc.train.max_steps = 1;
  train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = tmp.path + "/run";
  train::run_training(rc, opt);
  const std::string good = opt.out_dir + "/checkpoint.safetensors";
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 100u);

  auto expect_error = [&](const std::string& content, const std::string& part) {
    const std::string path = tmp.path + "/bad.safetensors";
    std::ofstream(path, std::ios::binary) << content;
    try {
      train::read_checkpoint(path);
      FAIL() << "expected an error containing '" << part << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  };
  expect_error(bytes.substr(0, bytes.size() - 10), "[safetensors]");  // truncated data
  expect_error(bytes.substr(0, 5), "[safetensors]");                  // truncated length
  expect_error("", "[safetensors]");
  // A valid safetensors file that is not a checkpoint.
  const std::string foreign = tmp.path + "/foreign.safetensors";
  io::save_safetensors(foreign, {{"w", Tensor::zeros({2})}});
  try {
    train::read_checkpoint(foreign);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no 'format' entry"), std::string::npos) << e.what();
  }
  // A checkpoint whose tensors do not fit the model: strict loading lists them all.
  train::Checkpoint ck = train::read_checkpoint(good);
  ck.params.erase("perceiver.embeddings.latents");
  ck.params["extra.weight"] = Tensor::zeros({1});
  ck.params["perceiver.decoder.final_layer.bias"] = Tensor::zeros({3});
  try {
    train::model_from_checkpoint(ck, "ck");
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("missing (1)"), std::string::npos) << m;
    EXPECT_NE(m.find("perceiver.embeddings.latents"), std::string::npos) << m;
    EXPECT_NE(m.find("unexpected (1)"), std::string::npos) << m;
    EXPECT_NE(m.find("extra.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("perceiver.decoder.final_layer.bias (expected float32[10], got float32[3])"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace perceiver
