// Config validation: unknown keys, wrong types and out-of-range values are errors that name
// the key and the allowed values; the shipped configs parse.
#include <gtest/gtest.h>

#include <filesystem>

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>

#include "perceiver/core/json_reader.h"
#include "perceiver/models/perceiver_config.h"
#include "perceiver/train/train_config.h"

namespace perceiver {
namespace {

using nlohmann::json;

json base() {
  return json::parse(R"({"model": {"num_latents": 16, "d_latents": 32}, "train": {"epochs": 1}, "data": {}})");
}

std::string error_of(const json& j) {
  try {
    train::parse_run_config(j);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_error(const json& j, const std::vector<std::string>& parts) {
  const std::string msg = error_of(j);
  ASSERT_FALSE(msg.empty()) << "expected an error for " << j.dump();
  for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
}

TEST(Config, DefaultsParse) {
  train::RunConfig rc = train::parse_run_config(base());
  EXPECT_EQ(rc.model["num_latents"], 16);
  EXPECT_EQ(rc.model["type"], "perceiver");
  EXPECT_EQ(rc.train.epochs, 1);
  EXPECT_EQ(rc.data.dir, "/usr/share/datasets/fashion-mnist");
}

TEST(Config, ShippedConfigsParse) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(PERCEIVER_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".json") continue;
    EXPECT_NO_THROW(train::load_run_config(entry.path().string())) << entry.path();
    ++n;
  }
  EXPECT_GE(n, 9) << "configs/*.json";
}

TEST(Config, RoundTripsThroughJson) {
  train::RunConfig rc = train::parse_run_config(base());
  train::RunConfig again = train::parse_run_config(rc.to_json());
  EXPECT_EQ(again.to_json(), rc.to_json());
}

TEST(Config, UnknownKeysAreNamedWithAllowedKeys) {
  json j = base();
  j["model"]["num_latent"] = 8;
  expect_error(j, {"model", "unknown key 'num_latent'", "allowed keys:", "num_latents"});
  j = base();
  j["trian"] = json::object();
  expect_error(j, {"unknown key 'trian'", "train"});
  j = base();
  j["train"]["learning_rate"] = 0.1;
  expect_error(j, {"config.train", "'learning_rate'", "lr"});
}

TEST(Config, WrongTypesAndRanges) {
  json j = base();
  j["model"]["num_latents"] = "many";
  expect_error(j, {"model.num_latents", "expected an integer in [1, ", "got \"many\""});
  j = base();
  j["model"]["num_latents"] = 0;
  expect_error(j, {"model.num_latents", "got 0"});
  j = base();
  j["model"]["num_latents"] = 2.5;
  expect_error(j, {"model.num_latents", "integer"});
  j = base();
  j["train"]["lr"] = -1;
  expect_error(j, {"train.lr", "a number in [1e-12, 10]", "got -1"});
  j = base();
  j["train"]["optimizer"] = "sgd";
  expect_error(j, {"train.optimizer", "\"adamw\"", "\"lamb\"", "got \"sgd\""});
  j = base();
  j["model"]["head"] = "pool";
  expect_error(j, {"model.head", "\"average\"", "\"query\""});
  j = base();
  j["model"]["share_weights"] = 1;
  expect_error(j, {"model.share_weights", "true or false"});
  j = base();
  j["model"]["image_size"] = json::array({28});
  j["model"]["max_resolution"] = json::array({28, 28});
  expect_error(j, {"model.max_resolution", "expected 1 entries"});
  j = base();
  j["model"]["image_size"] = json::array({28, -1});
  expect_error(j, {"model.image_size", "integers in [1, 4096]"});
  j = base();
  j["data"]["max_shift"] = 1000;
  expect_error(j, {"data.max_shift", "[0, 64]"});
  j = base();
  j["model"]["input_patch_size"] = 4;
  expect_error(j, {"model.input_patch_size", "odd", "got 4"});
  j = base();
  j["model"]["image_size"] = json::array({784});
  j["model"]["max_resolution"] = json::array({784});
  j["model"]["input_patch_size"] = 3;
  expect_error(j, {"model.input_patch_size", "2-D images only", "1 axes"});
  j = base();
  j["model"] = 5;
  expect_error(j, {"config.model", "expected an object"});
  expect_error(json::parse(R"({"train": {}})"), {"missing required object 'model'"});
}

// A Perceiver IO image classifier named by its hub config: the config is read, checked and
// stored in full; another class takes no image channels; a missing config and unsupported channel
// counts are refused.
TEST(Config, PerceiverIOClassifierFromAHubConfig) {
  json j = base();
  j["model"] = json::parse(R"({"type": "perceiver_io", "hub_config": {"architectures":
      ["PerceiverForImageClassificationFourier"], "image_size": 28, "num_latents": 8, "d_latents": 16,
      "num_labels": 10}})");
  const train::RunConfig rc = train::parse_run_config(j);
  EXPECT_EQ(rc.model.at("in_channels"), 1);
  EXPECT_EQ(rc.model.at("hub_config").at("num_self_attends_per_block"), 26);  // HF default filled in
  EXPECT_EQ(train::parse_run_config(rc.to_json()).model, rc.model);           // round trip
  json k = j;
  k["model"]["hub_config"]["architectures"] = json::array({"PerceiverForMultimodalAutoencoding"});
  k["model"].erase("in_channels");
  EXPECT_EQ(train::parse_run_config(k).model.at("hub_config").at("architectures")[0], "PerceiverForMultimodalAutoencoding");
  k["model"]["in_channels"] = 3;
  expect_error(k, {"model.in_channels: applies to image classifiers, not to PerceiverForMultimodalAutoencoding"});
  k = j;
  k["model"].erase("hub_config");
  expect_error(k, {"model.hub_config: missing", "config.json"});
  k = j;
  k["model"]["in_channels"] = 2;
  expect_error(k, {"model.in_channels", "1 (grey, repeated to RGB) or 3"});
  k = j;
  k["model"]["hub_config"] = "/nonexistent/config.json";
  expect_error(k, {"/nonexistent/config.json"});
  k = j;
  k["model"]["hub_config"]["d_latents"] = -4;
  expect_error(k, {"d_latents"});
  k = j;
  k["model"]["num_latents"] = 8;
  expect_error(k, {"model: unknown key 'num_latents'", "hub_config in_channels type"});
}

TEST(Config, HeadDivisibilityAndResidualWidths) {
  json j = base();
  j["model"]["self_attention_heads"] = 5;  // 32 % 5 != 0
  expect_error(j, {"d_latents = 32", "self_attention_heads = 5"});
  j = base();
  j["model"]["cross_attention_heads"] = 4;  // default input width 1 + 2 + 32 = 35
  expect_error(j, {"cross_attention_heads = 4", "35"});
  j = base();
  j["model"]["v_channels"] = 16;
  expect_error(j, {"must equal d_latents = 32"});
}

// A run must always reload its own config (checkpoint metadata holds config.to_json().dump()):
// every numeric field, set to each end of its range, survives to_json -> text -> parse_json ->
// parse_run_config unchanged. Float fields are stored as float32, so this catches validation in
// double (0.99f reads back as 0.9900000095367432). A numeric field missing from the table fails.
struct FieldEnds {
  const char* section;
  const char* key;
  double min, max;
  json patch;  // other fields set so that cross-field rules hold at the ends
};

void expect_round_trips(const json& base_config, const std::vector<FieldEnds>& table) {
  const json written = train::parse_run_config(base_config).to_json();
  for (const char* section : {"model", "train", "data"})
    for (auto it = written.at(section).begin(); it != written.at(section).end(); ++it) {
      if (!it.value().is_number() && !(it.value().is_array() && !it.value().empty() && it.value()[0].is_number()))
        continue;
      bool listed = false;
      for (const FieldEnds& f : table) listed = listed || (f.section == std::string(section) && f.key == it.key());
      EXPECT_TRUE(listed) << section << "." << it.key() << " has no range-end entry in the round-trip table";
    }
  for (const FieldEnds& f : table)
    for (double end : {f.min, f.max}) {
      json j = base_config;
      const json& current = written.at(f.section).at(f.key);
      const bool is_float = current.is_array() ? !current.empty() && current[0].is_number_float() : current.is_number_float();
      json value = is_float ? json(static_cast<float>(end)) : json(static_cast<int64_t>(end));
      if (current.is_array()) value = json(std::vector<json>(std::max<size_t>(current.size(), 1), value));
      j[f.section][f.key] = value;
      if (!f.patch.is_null())
        for (auto it = f.patch.begin(); it != f.patch.end(); ++it) j[f.section][it.key()] = it.value();
      SCOPED_TRACE(std::string(f.section) + "." + f.key + " = " + value.dump());
      train::RunConfig first;
      ASSERT_NO_THROW(first = train::parse_run_config(j));
      const std::string text = first.to_json().dump();  // what a checkpoint stores
      train::RunConfig again;
      ASSERT_NO_THROW(again = train::parse_run_config(parse_json(text, "checkpoint metadata config", "checkpoint")));
      EXPECT_EQ(again.to_json(), first.to_json());
    }
}

const std::vector<FieldEnds>& train_and_data_ends() {
  static const std::vector<FieldEnds> t = {
      {"train", "epochs", 1, 100000, {}},
      {"train", "batch_size", 1, 1 << 20, {}},
      {"train", "eval_batch_size", 1, 1 << 20, {}},
      {"train", "eval_every", 1, 100000, {}},
      {"train", "lr", 1e-12, 10.0, {}},
      {"train", "weight_decay", 0.0, 10.0, {}},
      {"train", "beta1", 0.0, 0.999999, {}},
      {"train", "beta2", 0.0, 0.999999, {}},
      {"train", "eps", 1e-12, 1.0, {}},
      {"train", "warmup_steps", 0, double(int64_t(1) << 40), {}},
      {"train", "final_lr_fraction", 0.0, 1.0, {}},
      {"train", "constant_fraction", 0.0, 1.0, {}},
      {"train", "grad_clip", 0.0, 1e6, {}},
      {"train", "label_smoothing", 0.0, 0.99, {}},
      {"train", "ema_decay", 0.0, 0.999999, {}},
      {"train", "seed", 0, 9.2e18, {}},
      {"train", "threads", 0, 1024, {}},
      {"train", "log_every", 1, double(int64_t(1) << 40), {}},
      {"train", "checkpoint_every", 0, double(int64_t(1) << 40), {}},
      {"train", "max_steps", 0, double(int64_t(1) << 40), {}},
      {"data", "train_limit", 0, double(int64_t(1) << 40), {}},
      {"data", "test_limit", 0, double(int64_t(1) << 40), {}},
      {"data", "max_shift", 0, 64, {}},
  };
  return t;
}

TEST(Config, EveryFieldRoundTripsAtItsRangeEnds) {
  std::vector<FieldEnds> perceiver = train_and_data_ends();
  const json no_self = {{"self_attends_per_block", 0}};
  perceiver.insert(perceiver.end(), {
      {"model", "image_size", 1, 4096, {{"max_resolution", {4096, 4096}}}},
      {"model", "in_channels", 1, 4096, {}},
      {"model", "input_patch_size", 1, 63, {}},
      {"model", "input_projection", 0, 1 << 16, {}},
      {"model", "sample_rate", 1000.0, 1e7, {}},
      {"model", "num_fourier_bands", 1, 1024, {}},
      {"model", "max_resolution", 1, 65536, {}},
      {"model", "num_latents", 1, 1 << 20, {}},
      {"model", "d_latents", 1, 1 << 16, {{"self_attention_heads", 1}}},
      {"model", "qk_channels", 0, 1 << 16, {{"self_attention_heads", 1}, {"v_channels", 32}}},
      {"model", "v_channels", 0, 1 << 16, no_self},
      {"model", "cross_attention_heads", 1, 1024, {{"qk_channels", 1024}, {"v_channels", 1024}, {"self_attends_per_block", 0}}},
      {"model", "self_attention_heads", 1, 1024, {{"d_latents", 1024}}},
      {"model", "cross_attention_widening_factor", 1, 64, {}},
      {"model", "self_attention_widening_factor", 1, 64, {}},
      {"model", "num_cross_attends", 1, 64, {}},
      {"model", "self_attends_per_block", 0, 256, {}},
      {"model", "num_blocks", 1, 256, {}},
      {"model", "decoder_heads", 1, 1024, {}},
      {"model", "num_classes", 1, 1 << 20, {}},
      {"model", "dropout", 0.0, 0.99, {}},
      {"model", "drop_path", 0.0, 0.99, {}},
      {"model", "init_std", 1e-6, 10.0, {}},
  });
  // SpecAugment counts need a width and widths a count (0 / 0 is the default, off)
  const std::vector<FieldEnds> masks = {
      {"model", "channel_masks", 1, 64, {{"channel_mask_width", 1}}},
      {"model", "channel_mask_width", 1, 4096, {{"channel_masks", 1}, {"in_channels", 4096}}},
      {"model", "element_masks", 1, 64, {{"element_mask_width", 1}}},
      {"model", "element_mask_width", 1, 384, {{"element_masks", 1}}},  // <= the inputs (28 x 28, or 384 frames)
  };
  perceiver.insert(perceiver.end(), masks.begin(), masks.end());
  expect_round_trips(base(), perceiver);

  std::vector<FieldEnds> vit = train_and_data_ends();
  vit.insert(vit.end(), {
      {"model", "image_size", 1, 65536, {{"patch_size", 1}}},
      {"model", "patch_size", 1, 65536, {{"image_size", 65536}}},
      {"model", "in_channels", 1, 4096, {}},
      {"model", "hidden_size", 1, 65536, {{"num_attention_heads", 1}}},
      {"model", "num_hidden_layers", 0, 1024, {}},
      {"model", "num_attention_heads", 1, 4096, {{"hidden_size", 4096}}},
      {"model", "intermediate_size", 1, 1 << 20, {}},
      {"model", "layer_norm_eps", 0.0, 1.0, {}},
      {"model", "num_classes", 1, 1 << 20, {}},
      {"model", "dropout", 0.0, 0.99, {}},
      {"model", "init_std", 1e-6, 10.0, {}},
  });
  // the WAV data keys (written only for data.format "wav")
  std::vector<FieldEnds> wav = train_and_data_ends();
  wav.insert(wav.end(), {
      {"model", "image_size", 1, 4096, {{"max_resolution", {4096}}}},  // 1-D: frames
      {"model", "in_channels", 1, 4096, {}},
      {"model", "input_patch_size", 1, 1, {}},  // neighbourhoods need 2-D images
      {"model", "input_projection", 0, 1 << 16, {}},
      {"model", "sample_rate", 1000.0, 1e7, {}},
      {"model", "num_fourier_bands", 1, 1024, {}},
      {"model", "max_resolution", 1, 65536, {}},
      {"model", "num_latents", 1, 1 << 20, {}},
      {"model", "d_latents", 1, 1 << 16, {{"self_attention_heads", 1}}},
      {"model", "qk_channels", 0, 1 << 16, {{"self_attention_heads", 1}, {"v_channels", 32}}},
      {"model", "v_channels", 0, 1 << 16, no_self},
      {"model", "cross_attention_heads", 1, 1024, {{"qk_channels", 1024}, {"v_channels", 1024}, {"self_attends_per_block", 0}}},
      {"model", "self_attention_heads", 1, 1024, {{"d_latents", 1024}}},
      {"model", "cross_attention_widening_factor", 1, 64, {}},
      {"model", "self_attention_widening_factor", 1, 64, {}},
      {"model", "num_cross_attends", 1, 64, {}},
      {"model", "self_attends_per_block", 0, 256, {}},
      {"model", "num_blocks", 1, 256, {}},
      {"model", "decoder_heads", 1, 1024, {}},
      {"model", "num_classes", 1, 1 << 20, {}},
      {"model", "dropout", 0.0, 0.99, {}},
      {"model", "drop_path", 0.0, 0.99, {}},
      {"model", "init_std", 1e-6, 10.0, {}},
      {"data", "sample_rate", 1, 768000, {}},
      {"data", "length", 1, 1 << 24, {{"frame", 1}}},
      {"data", "frame", 1, 4096, {{"length", 8192}}},
      {"data", "hop", 0, 4096, {{"frame", 2048}}},
      {"data", "test_index_range", 0, 1 << 30, {}},
      {"data", "test_fraction", 0.0, 1.0, {}},
      {"data", "split_seed", 0, 9.2e18, {}},
      {"data", "speed_perturbation", 0.5, 2.0, {}},
  });
  wav.insert(wav.end(), masks.begin(), masks.end());
  json wav_base = base();
  wav_base["model"] = {{"image_size", {384}}, {"in_channels", 16}, {"num_latents", 16}, {"d_latents", 32}};
  wav_base["data"] = {{"format", "wav"}, {"pattern", "{label}_{group}_{index}.wav"}, {"test_index_range", {0, 4}},
                      {"speed_perturbation", {0.9, 1.1}}};
  expect_round_trips(wav_base, wav);
  // leave-one-speaker-out (a test group, no index range) streamed: a checkpoint's config reads back
  json loso = wav_base;
  loso["data"].erase("test_index_range");
  loso["data"]["test_group"] = "george";
  loso["data"]["streaming"] = true;
  const train::RunConfig loso_rc = train::parse_run_config(loso);
  EXPECT_EQ(train::parse_run_config(loso_rc.to_json()).to_json(), loso_rc.to_json());
  EXPECT_TRUE(loso_rc.data.streaming);
  // streaming reads folders and text, not the IDX files
  json idx = base();
  idx["data"]["streaming"] = true;
  expect_error(idx, {"unknown key 'streaming'"});

  json vit_base = base();
  vit_base["model"] = {{"type", "vit"}, {"image_size", 28}, {"patch_size", 4}, {"hidden_size", 32},
                       {"num_attention_heads", 4}};
  expect_round_trips(vit_base, vit);
}

TEST(Config, NumbersThatCannotBeHeldAreRangeErrors) {
  json j = base();
  j["model"]["num_latents"] = 1e30;  // was a float-to-int cast overflow (UB)
  expect_error(j, {"model.num_latents", "expected an integer in [1, 1048576]", "got 1e+30"});
  j = base();
  j["train"]["seed"] = -1.0;
  expect_error(j, {"train.seed"});
  j = base();
  j["model"]["dropout"] = 1e300;
  expect_error(j, {"model.dropout", "[0, 0.99]"});
  const std::string path = ::testing::TempDir() + "/overflow.json";
  std::ofstream(path) << R"({"model": {"num_latents": 1e400}})";
  try {
    train::load_run_config(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[config] " + path + ": model.num_latents: "), std::string::npos) << e.what();
  }
}

TEST(Config, OverridesSetValuesBeforeValidation) {
  json j = {{"model", {{"num_latents", 8}}}, {"data", {{"format", "wav"}}}};
  train::apply_config_override(j, "train.epochs=12");               // a number; the object is created
  train::apply_config_override(j, "data.test_group=george");        // not JSON: a string
  train::apply_config_override(j, "data.speed_perturbation=[0.9, 1.1]");
  train::apply_config_override(j, "model.hub_config={\"d_model\": 4}");
  train::apply_config_override(j, "data.dir=\"/a b=c\"");           // only the first '=' splits
  EXPECT_EQ(j["train"]["epochs"], 12);
  EXPECT_EQ(j["data"]["test_group"], "george");
  EXPECT_EQ(j["data"]["speed_perturbation"], json::array({0.9, 1.1}));
  EXPECT_EQ(j["model"]["hub_config"]["d_model"], 4);
  EXPECT_EQ(j["data"]["dir"], "/a b=c");
  train::apply_config_override(j, "data.test_group=3");  // the config holds a string here: stays one
  EXPECT_EQ(j["data"]["test_group"], "3");
  const auto fails = [&](const std::string& o, const std::string& part) {
    json copy = j;
    try {
      train::apply_config_override(copy, o);
      ADD_FAILURE() << o;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  fails("train.epochs", "expected KEY=VALUE");
  fails("=3", "expected KEY=VALUE");
  fails("train..epochs=3", "empty key part");
  fails("train.epochs.x=3", "\"train.epochs\" is not an object");
}

TEST(Config, MissingAndInvalidFiles) {
  try {
    train::load_run_config("/nonexistent/cfg.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/cfg.json: cannot open"), std::string::npos);
  }
  // a directory or a device would block or never end: refused before reading
  for (const char* path : {"/tmp", "/dev/zero"}) {
    try {
      train::load_run_config(path);
      FAIL() << path;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("expected a regular JSON file"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace perceiver
