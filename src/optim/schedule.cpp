// Learning-rate schedules (formulas in schedule.h), computed in double.
#include "perceiver/optim/schedule.h"

#include <algorithm>
#include <cmath>

#include "perceiver/core/error.h"

namespace perceiver::optim {
namespace {

constexpr double kPi = 3.14159265358979323846;

bool is_cosine(const std::string& kind) { return kind == "warmup_cosine" || kind == "constant_cosine"; }

// Cosine from base to final over [start, end]; final at and after end.
double cosine(double base, double final_lr, int64_t start, int64_t end, int64_t step) {
  if (step >= end) return final_lr;
  const double t = static_cast<double>(step - start) / static_cast<double>(end - start);
  return final_lr + (base - final_lr) * 0.5 * (1.0 + std::cos(kPi * t));
}

}  // namespace

void validate(const ScheduleConfig& c) {
  check(c.kind == "constant" || is_cosine(c.kind),
        "[schedule] kind must be one of \"constant\", \"warmup_cosine\", \"constant_cosine\", got \"", c.kind,
        "\"");
  check(std::isfinite(c.base_lr) && c.base_lr > 0.0f, "[schedule] base_lr must be finite and > 0, got ",
        c.base_lr);
  check(c.warmup_steps >= 0, "[schedule] warmup_steps must be >= 0, got ", c.warmup_steps);
  check(std::isfinite(c.final_lr_fraction) && c.final_lr_fraction >= 0.0f && c.final_lr_fraction <= 1.0f,
        "[schedule] final_lr_fraction must be in [0, 1], got ", c.final_lr_fraction);
  check(std::isfinite(c.constant_fraction) && c.constant_fraction >= 0.0f && c.constant_fraction <= 1.0f,
        "[schedule] constant_fraction must be in [0, 1], got ", c.constant_fraction);
  if (is_cosine(c.kind)) {
    check(c.total_steps >= 1, "[schedule] total_steps must be >= 1 for kind \"", c.kind, "\", got ",
          c.total_steps);
    check(c.warmup_steps <= c.total_steps, "[schedule] warmup_steps must be in [0, total_steps = ", c.total_steps,
          "] for kind \"", c.kind, "\", got ", c.warmup_steps);
  }
}

float learning_rate(const ScheduleConfig& c, int64_t step) {
  validate(c);
  check(step >= 0, "[schedule] step must be >= 0, got ", step);
  const double base = c.base_lr;
  if (step < c.warmup_steps)
    return static_cast<float>(base * static_cast<double>(step) / static_cast<double>(c.warmup_steps));
  if (c.kind == "constant") return c.base_lr;
  const double final_lr = base * static_cast<double>(c.final_lr_fraction);
  int64_t start = c.warmup_steps;
  if (c.kind == "constant_cosine") {
    const auto constant_steps =
        static_cast<int64_t>(std::floor(static_cast<double>(c.constant_fraction) * static_cast<double>(c.total_steps)));
    start = std::max(start, constant_steps);
    if (step < start) return c.base_lr;
  }
  return static_cast<float>(cosine(base, final_lr, start, c.total_steps, step));
}

}  // namespace perceiver::optim
