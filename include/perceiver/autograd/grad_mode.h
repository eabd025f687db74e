// Grad mode: ops record graph nodes only while enabled (thread-local, default on).
#pragma once

namespace perceiver::autograd {

bool grad_enabled();
void set_grad_enabled(bool on);

// RAII: sets grad mode for a scope and restores the previous mode.
class GradModeGuard {
 public:
  explicit GradModeGuard(bool on) : prev_(grad_enabled()) { set_grad_enabled(on); }
  ~GradModeGuard() { set_grad_enabled(prev_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool prev_;
};

// Disables recording in a scope (inference, optimizer updates, evaluation).
class NoGradGuard : public GradModeGuard {
 public:
  NoGradGuard() : GradModeGuard(false) {}
};

// Enables recording in a scope (activation checkpointing re-runs a forward with recording
// inside a backward rule, which otherwise runs with recording off).
class EnableGradGuard : public GradModeGuard {
 public:
  EnableGradGuard() : GradModeGuard(true) {}
};

}  // namespace perceiver::autograd
