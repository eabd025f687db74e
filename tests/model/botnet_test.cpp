// BoTNet as a run-config model ("type": "botnet"): it fits a small batch of random images (the
// training path: batch statistics, relative-position attention, avg-pool shortcut maps), strict
// config errors name the key, and the normalised config round-trips.
#include <gtest/gtest.h>

#include "perceiver/models/botnet/botnet.h"
#include "perceiver/models/image_classifier.h"
#include "testing/compare.h"
#include "testing/overfit.h"

namespace perceiver {
namespace {

const nlohmann::json kSmall = {{"type", "botnet"}, {"image_size", 28},          {"in_channels", 1},
                               {"num_classes", 10},  {"stem_chs", 8},            {"channels", {8, 16, 16, 32}},
                               {"depths", {1, 1, 2, 1}}, {"num_heads", 2}};

TEST(BotNet, FitsASmallBatch) {
  auto model = models::make_image_classifier(models::normalize_image_classifier_config(kSmall), 1);
  model->train(true);
  const int64_t b = 16;
  const Tensor x = testing::randn({b, 28, 28}, 7);
  std::vector<int32_t> labels(b);
  for (int64_t i = 0; i < b; ++i) labels[static_cast<size_t>(i)] = static_cast<int32_t>((i * 3) % 10);
  EXPECT_EQ(testing::fit_batch(*model, x, labels, 300, 3e-3f), b) << "BoTNet did not fit 16 random images";
}

TEST(BotNet, RunConfigIsStrictAndRoundTrips) {
  const nlohmann::json norm = models::normalize_image_classifier_config(kSmall);
  EXPECT_EQ(models::normalize_image_classifier_config(norm), norm);
  EXPECT_EQ(norm.at("bottleneck_ratio"), 0.25);
  auto message = [](nlohmann::json j) {
    try {
      models::normalize_image_classifier_config(j);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  nlohmann::json j = kSmall;
  j["num_head"] = 2;
  EXPECT_NE(message(j).find("unknown key 'num_head'"), std::string::npos) << message(j);
  j = kSmall;
  j["image_size"] = 48;  // stage 3 would see 3 x 3
  EXPECT_NE(message(j).find("model.image_size 48 x 48"), std::string::npos) << message(j);
  j = kSmall;
  j["channels"] = {8, 16, 16};
  EXPECT_NE(message(j).find("model.channels"), std::string::npos) << message(j);
}

}  // namespace
}  // namespace perceiver
