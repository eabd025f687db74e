// Progress bar / plain progress lines.
#include "perceiver/train/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace perceiver::train {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = static_cast<int64_t>(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof(buf), "%lldh%02lldm", (long long)(t / 3600), (long long)(t % 3600 / 60));
  else if (t >= 60) std::snprintf(buf, sizeof(buf), "%lldm%02llds", (long long)(t / 60), (long long)(t % 60));
  else std::snprintf(buf, sizeof(buf), "%llds", (long long)t);
  return buf;
}

namespace {
std::string accuracy_text(const ProgressState& s) {
  if (s.accuracy < 0) return "";
  char buf[32];
  std::snprintf(buf, sizeof(buf), " acc %.3f", s.accuracy);
  return buf;
}
}  // namespace

Progress::Progress(bool quiet) : tty_(isatty(STDOUT_FILENO) == 1), quiet_(quiet) {}

void Progress::update(const ProgressState& s, bool force_line) {
  if (quiet_) return;
  const int64_t in_epoch = s.steps_per_epoch ? (s.step - 1) % s.steps_per_epoch + 1 : s.step;
  if (tty_) {
    const int width = 24;
    const double frac = s.steps_per_epoch ? static_cast<double>(in_epoch) / s.steps_per_epoch : 0.0;
    const int fill = static_cast<int>(frac * width);
    std::string bar(fill, '#');
    bar += std::string(width - fill, '.');
    std::printf("\r\033[Kepoch %d/%d [%s] step %lld/%lld loss %.4f%s lr %.2e %.0f samples/s ETA %s",
                s.epoch, s.epochs, bar.c_str(), (long long)s.step, (long long)s.total_steps, s.loss,
                accuracy_text(s).c_str(), s.lr, s.samples_per_s, format_duration(s.eta_s).c_str());
    std::fflush(stdout);
    bar_shown_ = true;
  } else if (force_line) {
    std::printf("epoch %d/%d step %lld/%lld (%lld/%lld in epoch) loss %.4f%s lr %.2e %.0f samples/s ETA %s\n",
                s.epoch, s.epochs, (long long)s.step, (long long)s.total_steps, (long long)in_epoch,
                (long long)s.steps_per_epoch, s.loss, accuracy_text(s).c_str(), s.lr, s.samples_per_s,
                format_duration(s.eta_s).c_str());
    std::fflush(stdout);
  }
}

void Progress::message(const std::string& line) {
  if (quiet_) return;
  if (tty_ && bar_shown_) std::printf("\r\033[K");
  bar_shown_ = false;
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

}  // namespace perceiver::train
