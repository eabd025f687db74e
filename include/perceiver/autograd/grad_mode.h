// Grad mode: ops record graph nodes only while enabled (thread-local, default on).
#pragma once

namespace perceiver::autograd {

bool grad_enabled();
void set_grad_enabled(bool on);

// RAII: disables recording in a scope (inference, optimizer updates, evaluation).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// RAII: enables recording in a scope (activation checkpointing re-runs a forward with recording
// inside a backward rule, which otherwise runs with recording off).
class EnableGradGuard {
 public:
  EnableGradGuard() : prev_(grad_enabled()) { set_grad_enabled(true); }
  ~EnableGradGuard() { set_grad_enabled(prev_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace perceiver::autograd
