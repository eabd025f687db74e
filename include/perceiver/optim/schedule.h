// Learning-rate schedules as pure functions of the step (0-based: the lr used by the update
// that follows `step` completed updates). Every kind starts with an optional linear warmup
//   lr = base_lr * step / warmup_steps                          for step < warmup_steps
// (so step 0 gets 0, as in Hugging Face's get_*_schedule_with_warmup), then:
//   "constant":        base_lr
//   "warmup_cosine":   cosine decay from base_lr at warmup_steps to final at total_steps
//   "constant_cosine": (the official Perceiver schedule) base_lr until
//                      decay_start = max(warmup_steps, floor(constant_fraction * total_steps)),
//                      then cosine decay to final at total_steps
// with cosine(t) = final + (base_lr - final) * 0.5 * (1 + cos(pi * t)), t = progress in [0, 1]
// through the decay span, final = final_lr_fraction * base_lr; steps past total_steps keep final.
#pragma once

#include <cstdint>
#include <string>

namespace perceiver::optim {

struct ScheduleConfig {
  std::string kind = "warmup_cosine";  // "constant" | "warmup_cosine" | "constant_cosine"
  float base_lr = 1e-3f;               // finite, > 0
  int64_t warmup_steps = 0;            // >= 0; <= total_steps for the cosine kinds
  int64_t total_steps = 1;             // >= 1 for the cosine kinds (unused by "constant")
  float final_lr_fraction = 0.0f;      // [0, 1]
  float constant_fraction = 0.5f;      // [0, 1], "constant_cosine" only
};

// Throws Error "[schedule] <field> must be <allowed range>, got <value>".
void validate(const ScheduleConfig& config);

// The learning rate for `step` (>= 0). Validates the config.
float learning_rate(const ScheduleConfig& config, int64_t step);

}  // namespace perceiver::optim
