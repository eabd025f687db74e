// Checks shared by the task tests: a run interrupted after some steps and resumed ends with the
// weights of the uninterrupted run, bit for bit; the error a run config's task refuses with.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "perceiver/core/error.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/train/task.h"
#include "perceiver/train/trainer.h"

namespace perceiver::testing {

// Runs rc into split_dir stopped after interrupt_at steps, resumes it to the end, and expects
// split_dir/model.safetensors to equal full_dir/model.safetensors (an uninterrupted run of rc).
inline void expect_resume_is_exact(const train::RunConfig& rc, train::TrainOptions opt, const std::string& full_dir,
                                   const std::string& split_dir, int64_t interrupt_at) {
  train::RunConfig first = rc;
  first.train.max_steps = interrupt_at;
  opt.out_dir = split_dir;
  opt.resume = false;
  ASSERT_TRUE(train::run_training(first, opt).interrupted);
  opt.resume = true;
  ASSERT_FALSE(train::run_training(rc, opt).interrupted);
  const auto a = io::load_safetensors(full_dir + "/model.safetensors").tensors;
  const auto b = io::load_safetensors(split_dir + "/model.safetensors").tensors;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_EQ(t.to_vector(), b.at(name).to_vector()) << name;
}

// The message of the error building the task of run config j throws ("" when it builds).
inline std::string task_error(const nlohmann::json& j) {
  try {
    train::Task task(train::parse_run_config(j));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace perceiver::testing
