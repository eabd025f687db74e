// Linear, LayerNorm and BatchNorm2d modules.
#include "perceiver/nn/layers.h"

#include <cmath>

#include "perceiver/autograd/checkpoint.h"
#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/functions_conv.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/allocator.h"
#include "perceiver/ops/convert.h"

namespace perceiver::nn {

namespace {
thread_local bool g_skip_init = false;
}

SkipInitGuard::SkipInitGuard() : prev_(g_skip_init) { g_skip_init = true; }
SkipInitGuard::~SkipInitGuard() { g_skip_init = prev_; }

Precision attention_precision(Precision precision, int64_t queries, int64_t keys, int64_t head_dim) {
  constexpr int64_t kMinBf16HeadMacs = int64_t{1} << 18;
  if (precision != Precision::kBF16) return precision;
  return queries * keys * head_dim >= kMinBf16HeadMacs ? Precision::kBF16 : Precision::kF32;
}

Tensor init_truncated_normal(const Shape& shape, float std, Rng& rng) {
  Tensor t = Tensor::empty(shape);
  if (g_skip_init) return t;
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) {
    float z;
    do z = rng.normal(); while (z < -2.0f || z > 2.0f);
    p[i] = std * z;
  }
  return t;
}

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, Rng& rng, float init_std) {
  check(in_features > 0 && out_features > 0, "[Linear] features must be positive, got in=",
        in_features, " out=", out_features);
  const float std = init_std > 0 ? init_std : 1.0f / std::sqrt(static_cast<float>(in_features));
  weight_ = register_parameter("weight", init_truncated_normal({out_features, in_features}, std, rng));
  if (bias) bias_ = register_parameter("bias", Tensor::zeros({out_features}));
}

// y = x W^T + b  (torch.nn.Linear). In bf16 precision with an fp32 master W (mixed-precision
// training, and inference with keep_f32_weights) the product uses bf16(W), rounded once per
// change of W and remembered beside it (ops::bf16_copy_of), so it is never stale after an
// optimizer step or a load; with a bf16 W (keep_f32_weights false) W itself.
Tensor Linear::forward(const Tensor& x) const {
  if (precision() == Precision::kF32) return ag::linear(x, weight_, bias_);
  const bool records = autograd::grad_enabled() && (weight_.requires_grad() || x.requires_grad() ||
                                                    (bias_.defined() && bias_.requires_grad()));
  if (weight_.dtype() == DType::kF32 && (is_training() || records))
    return ag::linear(x, weight_, bias_, Precision::kBF16);
  if (weight_.dtype() == DType::kF32) return ag::linear(x, ops::bf16_copy_of(weight_), bias_);
  return ag::linear(x, weight_, bias_);
}

void Linear::on_precision_changed() {
  if (precision() == Precision::kF32) {
    if (weight_.dtype() == DType::kBF16) {  // widen back
      weight_.assign(ops::to_f32(weight_.detach()));
      weight_.zero_grad();
    } else {
      weight_.forget_copy();  // fp32 products from now on: release bf16(W)
    }
    return;
  }
  if (weight_.dtype() == DType::kBF16 || keeps_f32_weights()) return;  // bf16(W) made when used
  // the parameter itself becomes bf16; the fp32 data is released
  weight_.assign(ops::to_bf16(weight_.detach()));
  weight_.zero_grad();  // an fp32 gradient would no longer match
  // Hand the freed fp32 block back to the system now (the caching allocator would keep it, and
  // a bf16 block never reuses an fp32-sized one): converting layer by layer then peaks at the
  // fp32 model plus one layer's bf16 copy instead of both whole models.
  release_cached_memory();
}

BatchNorm2d::BatchNorm2d(int64_t channels, float eps, float momentum) : eps_(eps), momentum_(momentum) {
  check(channels > 0, "[BatchNorm2d] channels must be positive, got ", channels);
  weight_ = register_parameter("weight", Tensor::full({channels}, 1.0f));
  bias_ = register_parameter("bias", Tensor::zeros({channels}));
  running_mean_ = register_buffer("running_mean", Tensor::zeros({channels}));
  running_var_ = register_buffer("running_var", Tensor::full({channels}, 1.0f));
  num_batches_tracked_ = register_buffer("num_batches_tracked", Tensor::from_vector_i32({}, {0}));
}

// y = (x - mean) / sqrt(var + eps) * w + b per channel: the batch's statistics in training mode
// (running buffers updated, num_batches_tracked += 1), the running ones in eval mode. The re-run
// of an activation-checkpointed segment normalises alike but updates nothing (momentum 0), so a
// checkpointed step updates them once.
std::pair<Tensor, Tensor> BatchNorm2d::fold_into_conv(const Tensor& conv_weight) const {
  const int64_t cout = weight_.numel();
  check(conv_weight.defined() && conv_weight.dtype() == DType::kF32 && conv_weight.rank() >= 1 &&
            conv_weight.dim(0) == cout,
        "[BatchNorm2d] fold_into_conv: expected a float32 weight with ", cout, " output channels, got ",
        conv_weight.defined() ? shape_str(conv_weight.shape()) : std::string("undefined"));
  const int64_t k = conv_weight.numel() / cout;
  Tensor w = Tensor::empty(conv_weight.shape()), b = Tensor::empty({cout});
  auto read = [](const Tensor& t) { return t.f32(); };  // read-only access (no write version bump)
  const float *gamma = read(weight_), *beta = read(bias_), *mean = read(running_mean_), *var = read(running_var_);
  const float* src = read(conv_weight);
  float *dst = w.f32(), *shift = b.f32();
  for (int64_t c = 0; c < cout; ++c) {
    const double s = static_cast<double>(gamma[c]) / std::sqrt(static_cast<double>(var[c]) + static_cast<double>(eps_));
    for (int64_t i = 0; i < k; ++i) dst[c * k + i] = static_cast<float>(src[c * k + i] * s);
    shift[c] = static_cast<float>(beta[c] - mean[c] * s);
  }
  return {w, b};
}

Tensor BatchNorm2d::forward(const Tensor& x) const {
  const bool update = is_training() && !ag::recomputing();
  Tensor y = ag::batch_norm(x, weight_, bias_, running_mean_, running_var_, eps_, update ? momentum_ : 0.0f,
                            is_training());
  if (update) num_batches_tracked_.data<int32_t>()[0] += 1;
  return y;
}

LayerNorm::LayerNorm(int64_t channels, float eps) : eps_(eps) {
  check(channels > 0, "[LayerNorm] channels must be positive, got ", channels);
  weight_ = register_parameter("weight", Tensor::full({channels}, 1.0f));
  bias_ = register_parameter("bias", Tensor::zeros({channels}));
}

// y = (x - mean) / sqrt(var + eps) * w + b over the last dim (torch.nn.LayerNorm)
Tensor LayerNorm::forward(const Tensor& x) const { return ag::layer_norm(x, weight_, bias_, eps_); }

}  // namespace perceiver::nn
