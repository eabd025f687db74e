// Learning-rate schedules: values at step 0, end of warmup, constant phase, mid-decay and the
// end; monotonicity; validation errors naming the bad field.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "perceiver/core/error.h"
#include "perceiver/optim/schedule.h"

namespace perceiver {
namespace {

using optim::learning_rate;
using optim::ScheduleConfig;

ScheduleConfig config(const std::string& kind) {
  ScheduleConfig c;
  c.kind = kind;
  c.base_lr = 1e-3f;
  c.warmup_steps = 10;
  c.total_steps = 110;
  c.final_lr_fraction = 0.1f;
  c.constant_fraction = 0.6f;
  return c;
}

TEST(Schedule, Constant) {
  ScheduleConfig c = config("constant");
  EXPECT_EQ(learning_rate(c, 0), 0.0f);
  EXPECT_FLOAT_EQ(learning_rate(c, 5), 0.5e-3f);
  EXPECT_FLOAT_EQ(learning_rate(c, 10), 1e-3f);
  EXPECT_FLOAT_EQ(learning_rate(c, 1000), 1e-3f);
  c.warmup_steps = 0;
  EXPECT_FLOAT_EQ(learning_rate(c, 0), 1e-3f);
}

TEST(Schedule, WarmupCosine) {
  const ScheduleConfig c = config("warmup_cosine");
  EXPECT_EQ(learning_rate(c, 0), 0.0f);
  EXPECT_FLOAT_EQ(learning_rate(c, 1), 1e-4f);
  EXPECT_FLOAT_EQ(learning_rate(c, 10), 1e-3f);            // end of warmup: peak
  EXPECT_FLOAT_EQ(learning_rate(c, 60), 0.5f * (1e-3f + 1e-4f));  // half-way through decay
  EXPECT_FLOAT_EQ(learning_rate(c, 110), 1e-4f);           // end: final fraction
  EXPECT_FLOAT_EQ(learning_rate(c, 500), 1e-4f);
  for (int64_t s = 1; s <= 10; ++s) EXPECT_GT(learning_rate(c, s), learning_rate(c, s - 1)) << s;
  for (int64_t s = 11; s <= 110; ++s) EXPECT_LT(learning_rate(c, s), learning_rate(c, s - 1)) << s;
}

TEST(Schedule, ConstantCosine) {
  const ScheduleConfig c = config("constant_cosine");  // decay starts at floor(0.6 * 110) = 66
  EXPECT_EQ(learning_rate(c, 0), 0.0f);
  EXPECT_FLOAT_EQ(learning_rate(c, 10), 1e-3f);
  EXPECT_FLOAT_EQ(learning_rate(c, 40), 1e-3f);
  EXPECT_FLOAT_EQ(learning_rate(c, 66), 1e-3f);
  EXPECT_FLOAT_EQ(learning_rate(c, 88), 0.5f * (1e-3f + 1e-4f));
  EXPECT_FLOAT_EQ(learning_rate(c, 110), 1e-4f);
  for (int64_t s = 67; s <= 110; ++s) EXPECT_LT(learning_rate(c, s), learning_rate(c, s - 1)) << s;
  for (int64_t s = 11; s <= 66; ++s) EXPECT_EQ(learning_rate(c, s), 1e-3f) << s;
}

TEST(Schedule, ConstantCosineDecayStartsNoEarlierThanWarmupEnd) {
  ScheduleConfig c = config("constant_cosine");
  c.warmup_steps = 8;
  c.total_steps = 8;  // tiny run: warmup covers it all, constant_fraction would say step 4
  EXPECT_FLOAT_EQ(learning_rate(c, 7), 7e-3f / 8);
  EXPECT_FLOAT_EQ(learning_rate(c, 8), 1e-4f);
  c.constant_fraction = 0.0f;
  c.warmup_steps = 0;
  c.final_lr_fraction = 0.0f;
  EXPECT_FLOAT_EQ(learning_rate(c, 0), 1e-3f);
  EXPECT_FLOAT_EQ(learning_rate(c, 4), 0.5e-3f);
  EXPECT_EQ(learning_rate(c, 8), 0.0f);
}

void expect_invalid(ScheduleConfig c, const std::string& field) {
  try {
    optim::validate(c);
    FAIL() << "accepted invalid " << field;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("[schedule] " + field, 0), 0u) << msg;
    EXPECT_NE(msg.find("got"), std::string::npos) << msg;
  }
  EXPECT_THROW(learning_rate(c, 0), Error);
}

TEST(Schedule, InvalidConfigsNameTheField) {
  ScheduleConfig c = config("warmup_cosine");
  c.kind = "linear";
  expect_invalid(c, "kind");
  c = config("warmup_cosine");
  c.base_lr = 0.0f;
  expect_invalid(c, "base_lr");
  c.base_lr = INFINITY;
  expect_invalid(c, "base_lr");
  c = config("constant");
  c.warmup_steps = -1;
  expect_invalid(c, "warmup_steps");
  c = config("warmup_cosine");
  c.warmup_steps = 111;
  expect_invalid(c, "warmup_steps");
  c = config("constant_cosine");
  c.total_steps = 0;
  c.warmup_steps = 0;
  expect_invalid(c, "total_steps");
  c = config("warmup_cosine");
  c.final_lr_fraction = 1.5f;
  expect_invalid(c, "final_lr_fraction");
  c = config("constant_cosine");
  c.constant_fraction = -0.1f;
  expect_invalid(c, "constant_fraction");
  EXPECT_THROW(learning_rate(config("constant"), -1), Error);
  EXPECT_NO_THROW(optim::validate(config("constant_cosine")));
}

}  // namespace
}  // namespace perceiver
