// Config validation: unknown keys, wrong types and out-of-range values are errors that name
// the key and the allowed values; the shipped configs parse.
#include <gtest/gtest.h>

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
  for (const char* name : {"fmnist_default.json", "fmnist_long.json"}) {
    const std::string path = std::string(PERCEIVER_SOURCE_DIR) + "/configs/" + name;
    EXPECT_NO_THROW(train::load_run_config(path)) << path;
  }
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
  j["model"] = 5;
  expect_error(j, {"config.model", "expected an object"});
  expect_error(json::parse(R"({"train": {}})"), {"missing required object 'model'"});
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

TEST(Config, MissingAndInvalidFiles) {
  try {
    train::load_run_config("/nonexistent/cfg.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/cfg.json: cannot open"), std::string::npos);
  }
}

}  // namespace
}  // namespace perceiver
