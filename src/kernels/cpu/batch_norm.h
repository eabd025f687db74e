// Fast CPU batch normalisation over (B, C, S) float32 with per-channel statistics over B*S
// (torch.nn.BatchNorm2d with S = H*W; biased variance normalises, the unbiased one feeds the
// running stats). w and b may be nullptr (weight 1, bias 0). Raw-pointer kernels; never throw.
#pragma once

#include <cstdint>

namespace perceiver::cpu {

// Training mode: mean, var (biased), rstd = 1 / sqrt(var + eps), var_unbiased = var * n / (n - 1)
// with n = B*S > 1; y = (x - mean) * rstd * w + b. All (C) arrays are written.
void batch_norm_train_forward(float* y, float* mean, float* var, float* rstd, float* var_unbiased,
                              const float* x, const float* w, const float* b, int64_t B,
                              int64_t C, int64_t S, float eps);

// Eval mode: y = (x - running_mean) / sqrt(running_var + eps) * w + b.
void batch_norm_inference_forward(float* y, const float* x, const float* w, const float* b,
                                  const float* running_mean, const float* running_var, int64_t B,
                                  int64_t C, int64_t S, float eps);

// Training-mode gradients (torch native_batch_norm_backward), per channel with xhat = (x - mean) * rstd:
//   dx = w * rstd * (dy - mean(dy) - xhat * mean(dy * xhat)),  dw = sum dy * xhat,  db = sum dy.
void batch_norm_train_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                               const float* w, const float* mean, const float* rstd, int64_t B,
                               int64_t C, int64_t S);

// Eval-mode gradients (a per-channel affine map), s = 1 / sqrt(running_var + eps):
//   dx = dy * w * s,  dw = sum dy * (x - running_mean) * s,  db = sum dy.
void batch_norm_inference_backward(float* dx, float* dw, float* db, const float* dy,
                                   const float* x, const float* w, const float* running_mean,
                                   const float* running_var, int64_t B, int64_t C, int64_t S,
                                   float eps);

// torch running-stat update: running = (1 - momentum) * running + momentum * batch, with the
// unbiased batch variance for running_var. All arrays (C).
void batch_norm_update_running(float* running_mean, float* running_var, const float* mean,
                               const float* var_unbiased, int64_t C, float momentum);

}  // namespace perceiver::cpu
