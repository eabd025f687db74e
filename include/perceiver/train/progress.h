// Training progress output: a single redrawn bar on a terminal, plain lines otherwise.
#pragma once

#include <cstdint>
#include <string>

namespace perceiver::train {

struct ProgressState {
  int epoch = 0, epochs = 0;
  int64_t step = 0, steps_per_epoch = 0, total_steps = 0;
  double loss = 0, accuracy = 0, lr = 0, samples_per_s = 0, eta_s = 0;  // accuracy < 0: not shown (regression)
};

class Progress {
 public:
  explicit Progress(bool quiet);
  void update(const ProgressState& s, bool force_line);  // force_line: plain mode prints now
  void message(const std::string& line);                 // a full line (clears the bar first)
  bool is_tty() const { return tty_; }

 private:
  bool tty_ = false, quiet_ = false, bar_shown_ = false;
};

std::string format_duration(double seconds);  // "1h02m", "3m05s", "42s"

}  // namespace perceiver::train
