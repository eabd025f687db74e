// Batch normalisation with per-channel statistics over (B, C, *) float32 — NCHW for
// torch.nn.BatchNorm2d (HF's conv stem: eps 1e-5, momentum 0.1). Statistics run over every axis
// but C (n = B * H * W values per channel). weight / bias may be undefined (affine = False).
#pragma once

#include "perceiver/core/tensor.h"

namespace perceiver::ops {

// Eval mode: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias.
// x (B, C, ...), weight, bias, running_mean, running_var (C).
Tensor batch_norm_inference(const Tensor& x, const Tensor& weight, const Tensor& bias,
                            const Tensor& running_mean, const Tensor& running_var, float eps);

struct BatchNormTrainOut {
  Tensor y;             // (B, C, ...) = (x - mean) * rstd * weight + bias
  Tensor mean;          // (C) batch mean
  Tensor var;           // (C) biased batch variance (the one that normalises)
  Tensor rstd;          // (C) 1 / sqrt(var + eps), saved for backward
  Tensor var_unbiased;  // (C) var * n / (n - 1), what torch feeds into running_var
};
// Training mode: batch statistics; requires n = B * H * W > 1 (as torch does).
BatchNormTrainOut batch_norm_train(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                   float eps);

struct BatchNormGrads {
  Tensor dx;  // (B, C, ...)
  Tensor dw;  // (C) sum dy * xhat  (gradient of weight)
  Tensor db;  // (C) sum dy         (gradient of bias)
};
// Training-mode backward, xhat = (x - mean) * rstd (torch native_batch_norm_backward):
//   dx = weight * rstd * (dy - mean(dy) - xhat * mean(dy * xhat)).
BatchNormGrads batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                                   const Tensor& mean, const Tensor& rstd);
// Eval-mode backward (per-channel affine), s = 1 / sqrt(running_var + eps):
//   dx = dy * weight * s,  dw = sum dy * (x - running_mean) * s,  db = sum dy.
BatchNormGrads batch_norm_inference_backward(const Tensor& dy, const Tensor& x,
                                             const Tensor& weight, const Tensor& running_mean,
                                             const Tensor& running_var, float eps);

// In place, torch semantics: running_mean = (1 - momentum) * running_mean + momentum * mean,
// running_var = (1 - momentum) * running_var + momentum * var_unbiased. All (C).
void batch_norm_update_running_stats(Tensor& running_mean, Tensor& running_var,
                                     const Tensor& mean, const Tensor& var_unbiased,
                                     float momentum);

}  // namespace perceiver::ops
