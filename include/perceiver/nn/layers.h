// Basic layers: Linear (torch.nn.Linear) and LayerNorm (torch.nn.LayerNorm, eps 1e-5).
#pragma once

#include "perceiver/core/random.h"
#include "perceiver/nn/module.h"

namespace perceiver::nn {

// Precision of an attention's two products for a layer running at `precision` (bf16 inference
// or mixed-precision training): bf16 when each head's products are large enough (queries x keys
// x head dim >= 2^18 multiply-adds), fp32 below. The bf16 kernels win from there (1.2-1.9x on
// this machine's AMX); on tiny heads (32 x 32 x 32, the Fashion-MNIST latents) the per-call cost
// and the conversions outweigh the products (docs/BENCHMARKS.md). fp32 layers stay fp32.
Precision attention_precision(Precision precision, int64_t queries, int64_t keys, int64_t head_dim);

// Initialisation used when training from scratch: weights N(0, std) truncated at 2 std, biases 0.
// Linear takes init_std > 0 for a fixed std (BERT/HF style, 0.02) or init_std <= 0 for LeCun
// scaling, std = 1/sqrt(in_features). Loading a checkpoint overwrites all of it.
Tensor init_truncated_normal(const Shape& shape, float std, Rng& rng);

// While alive (per thread), init_truncated_normal leaves values uninitialised: for building a
// model whose every parameter is about to be overwritten by a strict load (a full-size language
// model spends seconds drawing random numbers otherwise).
class SkipInitGuard {
 public:
  SkipInitGuard();
  ~SkipInitGuard();
  SkipInitGuard(const SkipInitGuard&) = delete;
  SkipInitGuard& operator=(const SkipInitGuard&) = delete;

 private:
  bool prev_;
};

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias, Rng& rng, float init_std = 0.0f);
  Tensor forward(const Tensor& x) const;  // (..., in) -> (..., out)
  int64_t in_features() const { return weight_.dim(1); }
  int64_t out_features() const { return weight_.dim(0); }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }

 protected:
  void on_precision_changed() override;

 private:
  Tensor weight_;       // (out, in)
  Tensor bias_;         // (out) or undefined
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t channels, float eps = 1e-5f);
  Tensor forward(const Tensor& x) const;
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  float eps() const { return eps_; }

 private:
  Tensor weight_, bias_;
  float eps_;
};

// torch.nn.BatchNorm2d over (B, C, H, W): weight, bias; buffers running_mean, running_var and
// num_batches_tracked (int32 here; an int64 file value loads). Training mode normalises with the
// batch statistics and updates the running buffers (momentum, unbiased variance) and the count;
// eval mode uses the running statistics.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, float eps = 1e-5f, float momentum = 0.1f);
  Tensor forward(const Tensor& x) const;
  // Inference with the running statistics folded into the convolution before it: (w * s, b)
  // with s = weight / sqrt(running_var + eps) per output channel and b = bias - running_mean * s,
  // so that conv(x, w * s) + b = forward(conv(x, w)) in eval mode (computed in double, no tape).
  std::pair<Tensor, Tensor> fold_into_conv(const Tensor& conv_weight) const;

 private:
  Tensor weight_, bias_;
  mutable Tensor running_mean_, running_var_, num_batches_tracked_;
  float eps_, momentum_;
};

}  // namespace perceiver::nn
