// batch_norm_{inference,train}, their backward ops and the running-stat update: validate,
// allocate, call kernels/cpu/batch_norm. x is viewed as (B, C, S) with S the product of the
// trailing dims (H * W for NCHW).
#include "perceiver/ops/batch_norm.h"

#include "perceiver/core/profiler.h"
#include <cmath>

#include "kernels/cpu/batch_norm.h"
#include "ops/validate.h"

namespace perceiver::ops {
namespace {

using detail::expect_f32;
using detail::expect_shape;

struct Dims {
  int64_t B, C, S;
};

Dims dims_of(const char* op, const Tensor& x) {
  expect_f32(op, "x", x);
  check(x.rank() >= 2, "[", op, "] x: expected rank >= 2 (B, C, ...), got shape ", shape_str(x.shape()));
  const int64_t B = x.dim(0), C = x.dim(1);
  check(C > 0, "[", op, "] x: expected C > 0 channels, got shape ", shape_str(x.shape()));
  return {B, C, B > 0 ? x.numel() / (B * C) : 0};
}

// A (C) float32 tensor; optional ones may be undefined.
void expect_channel_vec(const char* op, const char* name, const Tensor& t, int64_t C, bool optional) {
  if (optional && !t.defined()) return;
  expect_f32(op, name, t);
  expect_shape(op, name, t, {C});
}

void expect_eps(const char* op, float eps) {
  check(eps >= 0.0f, "[", op, "] eps: expected >= 0, got ", eps);
}

const float* opt(const Tensor& t) { return t.defined() ? t.f32() : nullptr; }

}  // namespace

Tensor batch_norm_inference(const Tensor& x, const Tensor& weight, const Tensor& bias,
                            const Tensor& running_mean, const Tensor& running_var, float eps) {
  profiler::Scope prof("batch_norm_inference");
  constexpr const char* op = "batch_norm_inference";
  const Dims d = dims_of(op, x);
  expect_channel_vec(op, "weight", weight, d.C, true);
  expect_channel_vec(op, "bias", bias, d.C, true);
  expect_channel_vec(op, "running_mean", running_mean, d.C, false);
  expect_channel_vec(op, "running_var", running_var, d.C, false);
  expect_eps(op, eps);
  Tensor y = Tensor::empty(x.shape());
  cpu::batch_norm_inference_forward(y.f32(), x.f32(), opt(weight), opt(bias), running_mean.f32(),
                                    running_var.f32(), d.B, d.C, d.S, eps);
  return y;
}

BatchNormTrainOut batch_norm_train(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                   float eps) {
  profiler::Scope prof("batch_norm_train");
  constexpr const char* op = "batch_norm_train";
  const Dims d = dims_of(op, x);
  check(d.B * d.S > 1, "[batch_norm_train] x: expected more than 1 value per channel (B * H * W > 1), got shape ",
        shape_str(x.shape()));
  expect_channel_vec(op, "weight", weight, d.C, true);
  expect_channel_vec(op, "bias", bias, d.C, true);
  expect_eps(op, eps);
  BatchNormTrainOut out{Tensor::empty(x.shape()), Tensor::empty({d.C}), Tensor::empty({d.C}),
                        Tensor::empty({d.C}), Tensor::empty({d.C})};
  cpu::batch_norm_train_forward(out.y.f32(), out.mean.f32(), out.var.f32(), out.rstd.f32(),
                                out.var_unbiased.f32(), x.f32(), opt(weight), opt(bias), d.B, d.C,
                                d.S, eps);
  return out;
}

BatchNormGrads batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                                   const Tensor& mean, const Tensor& rstd) {
  profiler::Scope prof("batch_norm_backward");
  constexpr const char* op = "batch_norm_backward";
  const Dims d = dims_of(op, x);
  expect_f32(op, "dy", dy);
  expect_shape(op, "dy", dy, x.shape());
  expect_channel_vec(op, "weight", weight, d.C, true);
  expect_channel_vec(op, "mean", mean, d.C, false);
  expect_channel_vec(op, "rstd", rstd, d.C, false);
  BatchNormGrads g{Tensor::empty(x.shape()), Tensor::empty({d.C}), Tensor::empty({d.C})};
  cpu::batch_norm_train_backward(g.dx.f32(), g.dw.f32(), g.db.f32(), dy.f32(), x.f32(), opt(weight),
                                 mean.f32(), rstd.f32(), d.B, d.C, d.S);
  return g;
}

BatchNormGrads batch_norm_inference_backward(const Tensor& dy, const Tensor& x,
                                             const Tensor& weight, const Tensor& running_mean,
                                             const Tensor& running_var, float eps) {
  profiler::Scope prof("batch_norm_inference_backward");
  constexpr const char* op = "batch_norm_inference_backward";
  const Dims d = dims_of(op, x);
  expect_f32(op, "dy", dy);
  expect_shape(op, "dy", dy, x.shape());
  expect_channel_vec(op, "weight", weight, d.C, true);
  expect_channel_vec(op, "running_mean", running_mean, d.C, false);
  expect_channel_vec(op, "running_var", running_var, d.C, false);
  expect_eps(op, eps);
  BatchNormGrads g{Tensor::empty(x.shape()), Tensor::empty({d.C}), Tensor::empty({d.C})};
  cpu::batch_norm_inference_backward(g.dx.f32(), g.dw.f32(), g.db.f32(), dy.f32(), x.f32(),
                                     opt(weight), running_mean.f32(), running_var.f32(), d.B, d.C,
                                     d.S, eps);
  return g;
}

void batch_norm_update_running_stats(Tensor& running_mean, Tensor& running_var,
                                     const Tensor& mean, const Tensor& var_unbiased,
                                     float momentum) {
  constexpr const char* op = "batch_norm_update_running_stats";
  expect_f32(op, "mean", mean);
  check(mean.rank() == 1, "[", op, "] mean: expected rank 1 (C), got shape ", shape_str(mean.shape()));
  const int64_t C = mean.dim(0);
  expect_channel_vec(op, "var_unbiased", var_unbiased, C, false);
  expect_channel_vec(op, "running_mean", running_mean, C, false);
  expect_channel_vec(op, "running_var", running_var, C, false);
  check(std::isfinite(momentum) && momentum >= 0.0f && momentum <= 1.0f, "[", op,
        "] momentum: expected in [0, 1], got ", momentum);
  cpu::batch_norm_update_running(running_mean.f32(), running_var.f32(), mean.f32(),
                                 var_unbiased.f32(), C, momentum);
}

}  // namespace perceiver::ops
