// BoTNet (Srinivas et al. 2021, arXiv 2101.11605, "Bottleneck Transformers for Visual
// Recognition") in timm's botnet26t layout (models/byobnet.py), under timm's parameter names so
// that a timm model.safetensors loads strictly:
//   stem    tiered: 3x3/2 conv (3C/8), 3x3 conv (C/2), 3x3 conv (C), each BatchNorm + ReLU; max
//           pool 3x3/2 (padding 1)                                      "stem.conv{1,2,3}.{conv,bn}"
//   stages  four of depths[s] blocks, channels[s] out, the first block of stages 1-3 strided (2):
//           stage 0, 1: bottlenecks; stage 2: bottleneck, self-attention, ... alternating;
//           stage 3: self-attention blocks                               "stages.{s}.{b}.*"
//   head    global average pool, linear                                 "head.fc"
// Bottleneck block:   y = ReLU(bn3(conv3_1x1(ReLU(bn2(conv2_kxk(ReLU(bn1(conv1_1x1(x)))))))) + sc(x))
// Self-attention block: the 3x3 convolution replaced by multi-head self-attention over the H x W
// map with 2-D relative position logits (then 2 x 2 average pooling when strided), BatchNorm + ReLU:
//   q, k, v = split(qkv_1x1(h));  logits = scale q^T k + rel(q);  o = v softmax(logits)^T
// sc(x) = BatchNorm(conv_1x1/stride(x)) when the channels or the resolution change, else x.
// Every BatchNorm: eps 1e-5, momentum 0.1; batch statistics in training mode.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "perceiver/models/image_classifier.h"
#include "perceiver/nn/layers.h"

namespace perceiver::models {

struct BotNetConfig {
  int64_t stem_chs = 64;
  std::vector<int64_t> channels = {256, 512, 1024, 2048};  // output channels of the four stages
  std::vector<int64_t> depths = {2, 2, 2, 2};
  double bottleneck_ratio = 0.25;  // mid channels = make_divisible(channels * ratio, 8)
  int64_t num_heads = 4;
  std::vector<int64_t> image_size = {256, 256};  // (H, W): fixed (the relative tables' size)
  int64_t in_channels = 3;
  int64_t num_classes = 1000;
  std::string architecture = "botnet26t_256";
  // How images become pixel_values (timm's eval transform, pretrained_cfg): a resize covering
  // floor(image_size / crop_pct), a centre crop, then (v / 255 - mean) / std per channel. A timm
  // folder's values, or timm's defaults when absent (0.875, bicubic, ImageNet mean and std); a run
  // config's model takes v / 255 as trained (crop_pct 1, bilinear, mean 0, std 1).
  double crop_pct = 0.875;
  std::string interpolation = "bicubic";  // "bilinear" or "bicubic"
  std::vector<float> mean = {0.485f, 0.456f, 0.406f}, std = {0.229f, 0.224f, 0.225f};  // in_channels values
  std::vector<std::string> label_names;  // timm "label_names" (may be empty)

  int64_t mid_channels(int stage) const;
  // timm hub config.json: "architecture", "num_classes", "num_features", "pretrained_cfg" with
  // "input_size" and the preprocessing above, "label_names" when known, and the layout under
  // "byob" (always written; absent, botnet26t_256's is assumed).
  nlohmann::json to_hub_json() const;
};

// From a timm-style config.json (lenient: other keys are ignored); `what` names it in errors.
BotNetConfig parse_botnet_config(const nlohmann::json& config, const std::string& what);
// From a run config's "model" object with "type": "botnet" (strict: unknown keys are errors):
// image_size [H, W] (or one number), in_channels, num_classes, stem_chs, channels, depths,
// bottleneck_ratio, num_heads. botnet_run_json writes it back with every key.
BotNetConfig parse_botnet_run_config(const nlohmann::json& model, const std::string& path = "model");
nlohmann::json botnet_run_json(const BotNetConfig& c);

// Conv2d (no bias) + BatchNorm2d (+ ReLU): timm ConvNormAct, "conv" and "bn".
class ConvNormAct : public nn::Module {
 public:
  ConvNormAct(int64_t in, int64_t out, int kernel, int stride, bool relu, Rng& rng);
  Tensor forward(const Tensor& x) const;

 private:
  Tensor weight_;  // "conv.weight" (out, in, k, k)
  std::shared_ptr<nn::BatchNorm2d> bn_;
  int stride_, pad_;
  bool relu_;
};

// timm BottleneckAttn: qkv 1x1 conv (no bias), heads over the map, relative position logits
// ("pos_embed.height_rel" (2H - 1, Dqk), "pos_embed.width_rel" (2W - 1, Dqk)), avg pool if strided.
class BottleneckAttention : public nn::Module {
 public:
  BottleneckAttention(int64_t dim, int64_t height, int64_t width, int64_t heads, int stride, Rng& rng);
  Tensor forward(const Tensor& x) const;  // (B, dim, H, W) -> (B, dim, H / stride, W / stride)

 private:
  Tensor qkv_;                      // "qkv.weight" (2 Dqk H + Dv H, dim, 1, 1)
  Tensor height_rel_, width_rel_;   // "pos_embed.height_rel", "pos_embed.width_rel"
  int64_t height_, width_, heads_, dqk_, dv_;
  int stride_;
};

// One block of a stage: a bottleneck or a self-attention block (see the file comment).
class BotNetBlock : public nn::Module {
 public:
  BotNetBlock(bool self_attention, int64_t in, int64_t out, int64_t mid, int stride, int64_t height, int64_t width,
              int64_t heads, Rng& rng);
  Tensor forward(const Tensor& x) const;  // checkpointed when activation checkpointing is on

 private:
  Tensor forward_impl(const Tensor& x) const;
  std::shared_ptr<ConvNormAct> shortcut_, conv1_, conv2_, conv3_;  // shortcut_ null: identity
  std::shared_ptr<BottleneckAttention> attention_;                  // self-attention blocks
  std::shared_ptr<nn::BatchNorm2d> post_attention_;                 // + ReLU
};

// A Model (hub folders: run, grad) and an ImageClassifier (run configs "type": "botnet": train,
// eval); the loss is the cross entropy against int32 "labels".
class BotNet : public ImageClassifier {
 public:
  BotNet(const BotNetConfig& config, uint64_t init_seed);

  // "pixel_values" (B, C, H, W) at the configured size -> "logits" (B, K); trace receives
  // "stem", "stages.0" .. "stages.3", "pooled" and "logits" (the fixtures' names).
  TensorMap forward(const TensorMap& inputs, TensorMap* trace = nullptr, Rng* rng = nullptr) const override;
  // ImageClassifier: images (B, H, W) for one channel or (B, H, W, C) channels-last.
  Tensor forward(const Tensor& images, Rng* rng = nullptr) const override;
  Tensor forward_pixels(const Tensor& pixel_values, TensorMap* trace = nullptr) const;
  std::string architecture() const override { return config_.architecture; }
  nlohmann::json hub_config() const override { return config_.to_hub_json(); }
  std::vector<int64_t> image_size() const override { return config_.image_size; }
  int64_t in_channels() const override { return config_.in_channels; }
  int64_t num_classes() const override { return config_.num_classes; }
  nlohmann::json config_json() const override { return botnet_run_json(config_); }
  int64_t training_activation_bytes(bool checkpointing) const override;
  const BotNetConfig& config() const { return config_; }

 private:
  BotNetConfig config_;
  std::vector<std::shared_ptr<ConvNormAct>> stem_;
  std::vector<std::vector<std::shared_ptr<BotNetBlock>>> stages_;
  std::shared_ptr<nn::Linear> fc_;
};

}  // namespace perceiver::models
