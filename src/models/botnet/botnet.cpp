// BoTNet: configuration (timm hub config.json), the stem, bottleneck and self-attention blocks,
// and the classifier (formulas in botnet.h).
#include "perceiver/models/botnet/botnet.h"

#include <cmath>
#include <utility>

#include "perceiver/autograd/checkpoint.h"
#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/functions_conv.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/json_reader.h"

namespace perceiver::models {
namespace {

constexpr float kBnEps = 1e-5f;      // timm BatchNormAct2d defaults
constexpr float kBnMomentum = 0.1f;

// timm make_divisible(v, 8): the nearest multiple of 8 (at least 8), raised by 8 when that falls
// more than 10% below v.
int64_t make_divisible(double v, int64_t divisor = 8) {
  int64_t r = std::max<int64_t>(divisor, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (static_cast<double>(r) < 0.9 * v) r += divisor;
  return r;
}

int64_t half_up(int64_t n) { return (n + 1) / 2; }  // a 3x3/2 convolution or max pool with padding 1

// Whether block b of stage s is a self-attention block (botnet26t: stage 2 alternates bottleneck
// and self-attention, stage 3 is self-attention only).
bool is_self_attention(int s, int64_t b) { return s == 3 || (s == 2 && b % 2 == 1); }

// One block of the layout: where it sits, its channels, and the map it reads (h x w) and writes.
struct BlockPlan {
  int stage;
  int64_t index;
  bool attention;
  int stride;
  int64_t in, out, mid, h, w, oh, ow;
};

// Every block in order, with the map sizes the convolutions give: the stem halves twice (rounding
// up), a strided bottleneck's 3x3/2 convolution rounds up, a strided self-attention block pools
// 2 x 2 (rounding down: validate() requires even sides there).
std::vector<BlockPlan> block_plan(const BotNetConfig& c) {
  std::vector<BlockPlan> plan;
  int64_t in = c.stem_chs, h = half_up(half_up(c.image_size[0])), w = half_up(half_up(c.image_size[1]));
  for (int s = 0; s < 4; ++s)
    for (int64_t b = 0; b < c.depths[static_cast<size_t>(s)]; ++b) {
      BlockPlan p{s, b, is_self_attention(s, b), s > 0 && b == 0 ? 2 : 1, in, c.channels[static_cast<size_t>(s)],
                  c.mid_channels(s), h, w, h, w};
      if (p.stride == 2) {
        p.oh = p.attention ? h / 2 : half_up(h);
        p.ow = p.attention ? w / 2 : half_up(w);
      }
      plan.push_back(p);
      in = p.out, h = p.oh, w = p.ow;
    }
  return plan;
}

Tensor init_conv(int64_t out, int64_t in, int k, Rng& rng) {
  const float std = std::sqrt(2.0f / static_cast<float>(in * k * k));  // He (fan-in), as ResNets
  return nn::init_truncated_normal({out, in, k, k}, std, rng);
}

// Layout checks shared by both config readers; `field` prefixes a layout key, `size` the input size.
void validate(const BotNetConfig& c, const std::string& field, const std::string& size) {
  check(c.stem_chs % 8 == 0, field, "stem_chs: expected a multiple of 8 (the tiered stem uses 3/8 and 1/2 of it), got ",
        c.stem_chs);
  for (int s = 2; s < 4; ++s)
    check(c.mid_channels(s) % c.num_heads == 0, field, "num_heads: stage ", s, " has ", c.mid_channels(s),
          " attention channels, not a multiple of num_heads = ", c.num_heads);
  // a strided self-attention block's map must be even (its 2 x 2 pooling and the 1x1/2
  // shortcut agree only then)
  for (const BlockPlan& b : block_plan(c))
    check(!(b.attention && b.stride == 2) || (b.h % 2 == 0 && b.w % 2 == 0), size, c.image_size[0], " x ",
          c.image_size[1], " gives stage ", b.stage, " a ", b.h, " x ", b.w,
          " map; its strided self-attention needs even sides (a multiple of 32 works; 28 does too)");
}

// timm's preprocessing fields of pretrained_cfg (defaults as timm.data.resolve_data_config).
void read_preprocessing(JsonObject& pretrained, BotNetConfig& c) {
  c.crop_pct = pretrained.get_number("crop_pct", 0.875, 1e-3, 1.0);
  pretrained.get_string("crop_mode", "center", {"center"});
  c.interpolation = pretrained.get_string("interpolation", "bicubic", {"bilinear", "bicubic"});
  const size_t n = static_cast<size_t>(c.in_channels);
  c.mean = pretrained.get_float_list("mean", {0.485f, 0.456f, 0.406f}, -1e6, 1e6, 1, 4096);
  c.std = pretrained.get_float_list("std", {0.229f, 0.224f, 0.225f}, 1e-12, 1e6, 1, 4096);
  for (auto [key, values] : {std::pair<const char*, std::vector<float>*>{"mean", &c.mean}, {"std", &c.std}}) {
    std::vector<float>& v = *values;
    // one value for every channel; timm's 3-channel default for another channel count: its first value
    if (v.size() == 1 || (!pretrained.has(key) && v.size() != n)) v.assign(n, v[0]);
    check(v.size() == n, pretrained.name(key), ": expected ", n, " values (one per channel of input_size), got ",
          v.size());
  }
}

}  // namespace

int64_t BotNetConfig::mid_channels(int stage) const {
  return make_divisible(static_cast<double>(channels[static_cast<size_t>(stage)]) * bottleneck_ratio);
}

nlohmann::json BotNetConfig::to_hub_json() const {
  nlohmann::json j = {{"architecture", architecture},
                      {"num_classes", num_classes},
                      {"num_features", channels.back()},
                      {"pretrained_cfg",
                       {{"input_size", {in_channels, image_size[0], image_size[1]}},
                        {"fixed_input_size", true},
                        {"crop_pct", crop_pct},
                        {"crop_mode", "center"},
                        {"interpolation", interpolation},
                        {"mean", mean},
                        {"std", std}}},
                      {"byob",
                       {{"stem_chs", stem_chs},
                        {"channels", channels},
                        {"depths", depths},
                        {"bottleneck_ratio", bottleneck_ratio},
                        {"num_heads", num_heads}}}};
  if (!label_names.empty()) j["label_names"] = label_names;
  return j;
}

BotNetConfig parse_botnet_config(const nlohmann::json& config, const std::string& what) {
  JsonObject o(config, JsonObject::Mode::kLenient, "hf_config", what);
  BotNetConfig c;
  c.architecture = o.get_string("architecture", c.architecture, {"botnet26t_256"});
  c.num_classes = o.get_int("num_classes", c.num_classes, 1, 1 << 20);
  JsonObject pretrained = o.get_object("pretrained_cfg");
  const std::vector<int64_t> input = pretrained.get_int_list("input_size", {3, 256, 256}, 1, 8192, 3, 3);
  c.in_channels = input[0];
  c.image_size = {input[1], input[2]};
  read_preprocessing(pretrained, c);
  c.label_names = o.get_string_list("label_names", {}, 0, c.num_classes);
  check(c.label_names.empty() || static_cast<int64_t>(c.label_names.size()) == c.num_classes, o.name("label_names"),
        ": expected num_classes = ", c.num_classes, " names, got ", c.label_names.size());
  JsonObject byob = o.get_object("byob");
  c.stem_chs = byob.get_int("stem_chs", c.stem_chs, 8, 1 << 14);
  c.channels = byob.get_int_list("channels", c.channels, 1, 1 << 16, 4, 4);
  c.depths = byob.get_int_list("depths", c.depths, 1, 64, 4, 4);
  c.bottleneck_ratio = byob.get_number("bottleneck_ratio", c.bottleneck_ratio, 1e-3, 16.0);
  c.num_heads = byob.get_int("num_heads", c.num_heads, 1, 256);
  validate(c, "[hf_config] " + what + ": byob: ", "[hf_config] " + what + ": pretrained_cfg.input_size ");
  return c;
}

BotNetConfig parse_botnet_run_config(const nlohmann::json& model, const std::string& path) {
  JsonObject o(model, path);
  BotNetConfig c;
  o.get_string("type", "botnet", {"botnet"});
  c.image_size = o.get_int_or_pair("image_size", c.image_size, 1, 8192);
  c.in_channels = o.get_int("in_channels", c.in_channels, 1, 4096);
  c.num_classes = o.get_int("num_classes", c.num_classes, 1, 1 << 20);
  c.stem_chs = o.get_int("stem_chs", c.stem_chs, 8, 1 << 14);
  c.channels = o.get_int_list("channels", c.channels, 1, 1 << 16, 4, 4);
  c.depths = o.get_int_list("depths", c.depths, 1, 64, 4, 4);
  c.bottleneck_ratio = o.get_number("bottleneck_ratio", c.bottleneck_ratio, 1e-3, 16.0);
  c.num_heads = o.get_int("num_heads", c.num_heads, 1, 256);
  o.finish();
  c.crop_pct = 1.0;  // the trainer feeds v / 255 at the model's size
  c.interpolation = "bilinear";
  c.mean.assign(static_cast<size_t>(c.in_channels), 0.0f);
  c.std.assign(static_cast<size_t>(c.in_channels), 1.0f);
  validate(c, "[config] " + path + ".", "[config] " + path + ".image_size ");
  return c;
}

nlohmann::json botnet_run_json(const BotNetConfig& c) {
  return {{"type", "botnet"},          {"image_size", c.image_size}, {"in_channels", c.in_channels},
          {"num_classes", c.num_classes}, {"stem_chs", c.stem_chs},     {"channels", c.channels},
          {"depths", c.depths},          {"bottleneck_ratio", c.bottleneck_ratio}, {"num_heads", c.num_heads}};
}

ConvNormAct::ConvNormAct(int64_t in, int64_t out, int kernel, int stride, bool relu, Rng& rng)
    : stride_(stride), pad_(kernel / 2), relu_(relu) {
  weight_ = register_parameter("conv.weight", init_conv(out, in, kernel, rng));
  bn_ = register_module("bn", std::make_shared<nn::BatchNorm2d>(out, kBnEps, kBnMomentum));
}

// y = ReLU?(BatchNorm(conv(x))); in inference (eval mode, no gradients) BatchNorm's running
// statistics are folded into the convolution: y = ReLU?(conv(x, w * s) + b)
Tensor ConvNormAct::forward(const Tensor& x) const {
  Tensor y;
  if (!is_training() && !autograd::grad_enabled()) {
    const auto [w, b] = bn_->fold_into_conv(weight_);
    y = ag::conv2d(x, w, b, stride_, stride_, pad_, pad_);
  } else {
    y = bn_->forward(ag::conv2d(x, weight_, Tensor(), stride_, stride_, pad_, pad_));
  }
  return relu_ ? ag::relu(y) : y;
}

BottleneckAttention::BottleneckAttention(int64_t dim, int64_t height, int64_t width, int64_t heads, int stride,
                                         Rng& rng)
    : height_(height), width_(width), heads_(heads), stride_(stride) {
  dqk_ = make_divisible(static_cast<double>(dim)) / heads;  // timm: dim_out * qk_ratio, qk_ratio 1
  dv_ = dim / heads;
  qkv_ = register_parameter("qkv.weight",
                            nn::init_truncated_normal({heads * (2 * dqk_ + dv_), dim, 1, 1},
                                                      1.0f / std::sqrt(static_cast<float>(dim)), rng));
  const float scale = 1.0f / std::sqrt(static_cast<float>(dqk_));
  height_rel_ = register_parameter("pos_embed.height_rel", nn::init_truncated_normal({2 * height - 1, dqk_}, scale, rng));
  width_rel_ = register_parameter("pos_embed.width_rel", nn::init_truncated_normal({2 * width - 1, dqk_}, scale, rng));
}

Tensor BottleneckAttention::forward(const Tensor& x) const {
  check(x.rank() == 4 && x.dim(2) == height_ && x.dim(3) == width_, "[botnet] self-attention: expected a (B, C, ",
        height_, ", ", width_, ") map (the size its relative position tables were made for), got ",
        shape_str(x.shape()));
  const int64_t b = x.dim(0), hw = height_ * width_, cqk = heads_ * dqk_, cv = heads_ * dv_;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dqk_));
  // q, k, v = split(qkv(x)) along the channels; per head the d x HW planes (channel = head D + d)
  const Tensor qkv = ag::reshape(ag::conv2d(x, qkv_, Tensor(), 1, 1, 0, 0), {b, 2 * cqk + cv, hw});
  const Tensor q = ag::reshape(ag::slice_tokens(qkv, 0, cqk), {b * heads_, dqk_, hw});
  const Tensor k = ag::reshape(ag::slice_tokens(qkv, cqk, cqk), {b * heads_, dqk_, hw});
  const Tensor v = ag::reshape(ag::slice_tokens(qkv, 2 * cqk, cv), {b * heads_, dv_, hw});
  // logits (BH, HW, HW) = scale q^T k + rel(q): rel[i, j] = q_i . width_rel[jw - iw + W - 1]
  //                                                      + q_i . height_rel[jh - ih + H - 1]
  const Tensor rel = ag::relative_logits(ag::matmul(q, width_rel_, true, true), ag::matmul(q, height_rel_, true, true),
                                         height_, width_);
  const Tensor p = ag::softmax(ag::add(ag::scale(ag::matmul(q, k, true, false), scale), rel));
  // o (BH, Dv, HW) = v p^T, i.e. out_i = sum_j p_ij v_j, laid out as channels again
  Tensor o = ag::reshape(ag::matmul(v, p, false, true), {b, cv, height_, width_});
  if (stride_ == 2) o = ag::avg_pool2d(o, 2, 2, 2, 2);
  return o;
}

BotNetBlock::BotNetBlock(bool self_attention, int64_t in, int64_t out, int64_t mid, int stride, int64_t height,
                         int64_t width, int64_t heads, Rng& rng) {
  if (in != out || stride != 1)
    shortcut_ = register_module("shortcut", std::make_shared<ConvNormAct>(in, out, 1, stride, false, rng));
  conv1_ = register_module("conv1_1x1", std::make_shared<ConvNormAct>(in, mid, 1, 1, true, rng));
  if (self_attention) {
    attention_ = register_module("self_attn",
                                 std::make_shared<BottleneckAttention>(mid, height, width, heads, stride, rng));
    post_attention_ = register_module("post_attn", std::make_shared<nn::BatchNorm2d>(mid, kBnEps, kBnMomentum));
  } else {
    conv2_ = register_module("conv2_kxk", std::make_shared<ConvNormAct>(mid, mid, 3, stride, true, rng));
  }
  conv3_ = register_module("conv3_1x1", std::make_shared<ConvNormAct>(mid, out, 1, 1, false, rng));
}

// y = ReLU(conv3(middle(conv1(x))) + shortcut(x)), middle = the 3x3 convolution or the
// self-attention followed by BatchNorm + ReLU
Tensor BotNetBlock::forward_impl(const Tensor& x) const {
  const Tensor sc = shortcut_ ? shortcut_->forward(x) : x;
  Tensor h = conv1_->forward(x);
  h = attention_ ? ag::relu(post_attention_->forward(attention_->forward(h))) : conv2_->forward(h);
  return ag::relu(ag::add(conv3_->forward(h), sc));
}

// With activation checkpointing in training the block keeps only its input and is re-run in
// backward (its BatchNorms then normalise alike without updating their statistics again).
Tensor BotNetBlock::forward(const Tensor& x) const {
  if (!activation_checkpointing()) return forward_impl(x);
  return ag::checkpoint([this](const std::vector<Tensor>& in, Rng*) { return forward_impl(in[0]); }, {x}, nullptr,
                        any_parameter_requires_grad());
}

BotNet::BotNet(const BotNetConfig& config, uint64_t init_seed) : config_(config) {
  const BotNetConfig& c = config_;
  Rng rng(init_seed);
  // tiered stem: 3C/8, C/2, C channels
  const int64_t stem[3] = {3 * c.stem_chs / 8, c.stem_chs / 2, c.stem_chs};
  int64_t in = c.in_channels;
  for (int i = 0; i < 3; ++i) {
    stem_.push_back(register_module("stem.conv" + std::to_string(i + 1),
                                    std::make_shared<ConvNormAct>(in, stem[i], 3, i == 0 ? 2 : 1, true, rng)));
    in = stem[i];
  }
  stages_.resize(4);
  for (const BlockPlan& b : block_plan(c))
    stages_[static_cast<size_t>(b.stage)].push_back(register_module(
        "stages." + std::to_string(b.stage) + "." + std::to_string(b.index),
        std::make_shared<BotNetBlock>(b.attention, b.in, b.out, b.mid, b.stride, b.h, b.w, c.num_heads, rng)));
  fc_ = register_module("head.fc", std::make_shared<nn::Linear>(c.channels.back(), c.num_classes, true, rng));
}

Tensor BotNet::forward_pixels(const Tensor& pixel_values, TensorMap* trace) const {
  const BotNetConfig& c = config_;
  check(pixel_values.defined() && pixel_values.rank() == 4 && pixel_values.dim(1) == c.in_channels &&
            pixel_values.dim(2) == c.image_size[0] && pixel_values.dim(3) == c.image_size[1],
        "[botnet] pixel_values: expected (B, ", c.in_channels, ", ", c.image_size[0], ", ", c.image_size[1],
        ") (the model's fixed input size), got ", pixel_values.defined() ? shape_str(pixel_values.shape()) : "undefined");
  // stem: three ConvNormAct, then max pool 3x3/2 with padding 1
  Tensor h = pixel_values;
  for (const auto& conv : stem_) h = conv->forward(h);
  h = ag::max_pool2d(h, 3, 3, 2, 2, 1, 1);
  if (trace) (*trace)["stem"] = h;
  for (size_t s = 0; s < stages_.size(); ++s) {
    for (const auto& block : stages_[s]) h = block->forward(h);
    if (trace) (*trace)["stages." + std::to_string(s)] = h;
  }
  // head: global average pool over H x W, then the linear classifier
  const Tensor pooled = ag::mean(ag::reshape(h, {h.dim(0), h.dim(1), h.dim(2) * h.dim(3)}), 2);
  const Tensor logits = fc_->forward(pooled);
  if (trace) {
    (*trace)["pooled"] = pooled;
    (*trace)["logits"] = logits;
  }
  return logits;
}

TensorMap BotNet::forward(const TensorMap& inputs, TensorMap* trace, Rng*) const {
  return {{"logits", forward_pixels(require_input(inputs, "pixel_values", "botnet"), trace)}};
}

Tensor BotNet::forward(const Tensor& images, Rng*) const {
  return forward_pixels(images_to_nchw(images, config_.in_channels, "botnet"));
}

// Per example, fp32: every ConvNormAct keeps its convolution and BatchNorm outputs (and the
// ReLU's), a block its sum and ReLU; a self-attention block its q, k, v, three (heads, HW, HW)
// logit maps (scores, with the relative logits, softmax) and the per-offset products; plus the
// stem's pool and the head. With checkpointing the blocks keep their inputs, plus the largest
// block's graph while it is re-run. Measured against the allocator's peak in memory_estimate_test.
int64_t BotNet::training_activation_bytes(bool checkpointing) const {
  const BotNetConfig& c = config_;
  int64_t floats = 0;
  int64_t h = half_up(c.image_size[0]), w = half_up(c.image_size[1]);
  const int64_t stem[3] = {3 * c.stem_chs / 8, c.stem_chs / 2, c.stem_chs};
  floats += c.in_channels * c.image_size[0] * c.image_size[1];
  for (int64_t ch : stem) floats += 3 * ch * h * w;
  h = half_up(h), w = half_up(w);
  floats += c.stem_chs * h * w;  // pool
  int64_t largest = 0;
  for (const BlockPlan& b : block_plan(c)) {
    const int64_t hw = b.h * b.w, ohw = b.oh * b.ow;
    int64_t block = 0;
    if (b.in != b.out || b.stride != 1) block += 2 * b.out * ohw;  // shortcut conv + BN
    block += 3 * b.mid * hw;                                         // conv1
    if (b.attention)
      block += 3 * b.mid * hw + 3 * c.num_heads * hw * hw + c.num_heads * hw * (2 * b.h + 2 * b.w) + 3 * b.mid * ohw;
    else
      block += 3 * b.mid * ohw;              // conv2
    block += 2 * b.out * ohw + 2 * b.out * ohw;  // conv3 + BN, sum + ReLU
    floats += checkpointing ? b.out * ohw : block;
    largest = std::max(largest, block);
  }
  if (checkpointing) floats += largest;
  floats += 2 * c.channels.back() + c.num_classes;
  return static_cast<int64_t>(sizeof(float)) * floats;
}

}  // namespace perceiver::models
