// ViT classifier: construction from a config, the forward pass (HF ViTEmbeddings, ViTEncoder,
// ViTModel.layernorm, ViTForImageClassification.classifier), position interpolation, and
// building from an HF config + state dict.
#include "perceiver/models/vit/vit.h"

#include <cmath>
#include <cstring>

#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/functions_conv.h"
#include "perceiver/autograd/functions_interpolate.h"

namespace perceiver::models {

namespace {

// k same-shape tensors -> (k, ...), a plain copy (trace output, no autograd).
Tensor stack_copy(const std::vector<Tensor>& xs) {
  Shape s = xs.front().shape();
  s.insert(s.begin(), static_cast<int64_t>(xs.size()));
  Tensor out = Tensor::empty(s);
  float* dst = out.f32();
  for (const Tensor& x : xs) {
    std::memcpy(dst, x.f32(), x.nbytes());
    dst += x.numel();
  }
  return out;
}

}  // namespace

std::map<std::string, Tensor> ViTTrace::to_map() const {
  std::map<std::string, Tensor> m{{"patch_embeddings", patch_embeddings},
                                  {"embeddings", embeddings},
                                  {"final_layernorm_output", final_layernorm_output},
                                  {"logits", logits}};
  if (!attention_block_outputs.empty())
    m["attention_block_output_each_layer"] = stack_copy(attention_block_outputs);
  if (!hidden_states.empty()) m["hidden_states_after_each_layer"] = stack_copy(hidden_states);
  return m;
}

ViT::ViT(const ViTConfig& config, uint64_t init_seed) : config_(config) {
  const ViTConfig& c = config_;
  Rng rng(init_seed);
  const int64_t d = c.hidden_size, fan_in = c.in_channels * c.patch_size[0] * c.patch_size[1];
  const float conv_std = c.init == "normal" ? c.init_std : 1.0f / std::sqrt(static_cast<float>(fan_in));
  // HF ViTEmbeddings: cls_token (1, 1, D), position_embeddings (1, N + 1, D), patch projection.
  cls_token_ = register_parameter("vit.embeddings.cls_token", nn::init_truncated_normal({1, 1, d}, c.init_std, rng));
  position_table_ = register_parameter("vit.embeddings.position_embeddings",
                                       nn::init_truncated_normal({1, 1 + c.num_patches(), d}, c.init_std, rng));
  projection_w_ = register_parameter(
      "vit.embeddings.patch_embeddings.projection.weight",
      nn::init_truncated_normal({d, c.in_channels, c.patch_size[0], c.patch_size[1]}, conv_std, rng));
  projection_b_ = register_parameter("vit.embeddings.patch_embeddings.projection.bias", Tensor::zeros({d}));
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    layers_.push_back(register_module("vit.encoder.layer." + std::to_string(i), std::make_shared<ViTLayer>(c, rng)));
  layernorm_ = register_module("vit.layernorm", std::make_shared<nn::LayerNorm>(d, c.layer_norm_eps));
  classifier_ = register_module(
      "classifier", std::make_shared<nn::Linear>(d, c.num_classes, true, rng, c.init == "normal" ? c.init_std : 0.0f));
}

Tensor ViT::position_embeddings(int64_t grid_h, int64_t grid_w) const {
  const ViTConfig& c = config_;
  const int64_t d = c.hidden_size, h0 = c.grid_h(), w0 = c.grid_w();
  check(grid_h >= 1 && grid_w >= 1, "[ViT] patch grid must be at least 1 x 1, got ", grid_h, " x ", grid_w);
  if (grid_h == h0 && grid_w == w0) return ag::reshape(position_table_, {1 + h0 * w0, d});
  // HF interpolate_pos_encoding: class_pos_embed = position_embeddings[:, :1]
  Tensor class_pos = ag::slice_tokens(position_table_, 0, 1);                 // (1, 1, D)
  // patch_pos_embed = position_embeddings[:, 1:].reshape(1, h0, w0, D).permute(0, 3, 1, 2)
  Tensor grid = ag::tokens_to_channels_first(ag::slice_tokens(position_table_, 1, h0 * w0), h0, w0);
  // nn.functional.interpolate(size=(new_height, new_width), mode="bicubic", align_corners=False)
  grid = ag::interpolate_bicubic(grid, grid_h, grid_w, false);            // (1, D, gh, gw)
  // .permute(0, 2, 3, 1).view(1, -1, D)
  Tensor patch_pos = ag::channels_last_tokens(grid);                      // (1, gh * gw, D)
  // torch.cat((class_pos_embed, patch_pos_embed), dim=1)
  return ag::reshape(ag::concat_tokens({class_pos, patch_pos}), {1 + grid_h * grid_w, d});
}

Tensor ViT::forward_pixels(const Tensor& pixel_values, ViTTrace* trace, Rng* rng) const {
  const ViTConfig& c = config_;
  check(pixel_values.defined() && pixel_values.dtype() == DType::kF32 && pixel_values.rank() == 4 &&
            pixel_values.dim(1) == c.in_channels,
        "[ViT] pixel_values must be float32 (B, ", c.in_channels, ", H, W), got ",
        pixel_values.defined() ? shape_str(pixel_values.shape()) : std::string("undefined"));
  const int64_t b = pixel_values.dim(0), d = c.hidden_size;
  const int64_t ph = c.patch_size[0], pw = c.patch_size[1];
  check(pixel_values.dim(2) >= ph && pixel_values.dim(3) >= pw, "[ViT] pixel_values ",
        shape_str(pixel_values.shape()), " is smaller than one ", ph, " x ", pw, " patch");
  const int64_t gh = pixel_values.dim(2) / ph, gw = pixel_values.dim(3) / pw, n = gh * gw;
  const bool drop = is_training() && c.dropout > 0.0f;
  check(!drop || rng != nullptr, "[ViT] dropout in training mode needs an Rng");

  // ViTPatchEmbeddings: projection(pixel_values), a conv with kernel = stride = patch  (B, D, gh, gw)
  Tensor x = ag::conv2d(pixel_values, projection_w_, projection_b_, static_cast<int>(ph), static_cast<int>(pw), 0, 0);
  // .flatten(2).transpose(1, 2): patches row-major over the grid                      (B, N, D)
  Tensor patches = ag::channels_last_tokens(x);
  // ViTEmbeddings: torch.cat((cls_token.expand(B, -1, -1), embeddings), dim=1)         (B, 1 + N, D)
  Tensor h = ag::concat_tokens({ag::expand_leading(ag::reshape(cls_token_, {1, d}), b), patches});
  // embeddings + position_embeddings (interpolate_pos_encoding when the grid differs)
  h = ag::add(h, position_embeddings(gh, gw));
  // dropout(embeddings)
  if (drop) h = ag::dropout(h, c.dropout, true, *rng);
  if (trace) {
    trace->patch_embeddings = patches;
    trace->embeddings = h;
  }
  // ViTEncoder: every ViTLayer in turn
  for (const auto& layer : layers_) {
    Tensor attention_output;
    h = layer->forward(h, rng, trace ? &attention_output : nullptr);
    if (trace) {
      trace->attention_block_outputs.push_back(attention_output);
      trace->hidden_states.push_back(h);
    }
  }
  // ViTModel: sequence_output = layernorm(encoder_output)
  Tensor z = layernorm_->forward(h);
  // ViTForImageClassification: classifier(sequence_output[:, 0, :])  ("mean": the patch-token mean)
  Tensor pooled = c.pooling == "cls" ? ag::reshape(ag::slice_tokens(z, 0, 1), {b, d}) : ag::mean(ag::slice_tokens(z, 1, n), 1);
  Tensor logits = classifier_->forward(pooled);
  if (trace) {
    trace->final_layernorm_output = z;
    trace->logits = logits;
  }
  return logits;
}

Tensor ViT::forward(const Tensor& images, Rng* rng) const {
  return forward_pixels(images_to_nchw(images, config_.in_channels, "ViT"), nullptr, rng);
}

TensorMap ViT::forward(const TensorMap& inputs, TensorMap* trace, Rng* rng) const {
  ViTTrace t;
  const Tensor logits = forward_pixels(require_input(inputs, "pixel_values", "ViT"), trace ? &t : nullptr, rng);
  if (trace) *trace = t.to_map();
  return {{"logits", logits}};
}

int64_t ViT::training_activation_bytes(bool checkpointing) const {
  const ViTConfig& c = config_;
  const int64_t t = c.num_patches() + 1, d = c.hidden_size;
  const int64_t patches = c.num_patches() * c.in_channels * c.patch_size[0] * c.patch_size[1];  // unfolded pixels
  const int64_t drop = c.dropout > 0.0f ? 2 * d : 0;
  // per token and layer: LN, q, k, v, context (+ lse), dense, residual, LN, output, residual;
  // the MLP's dense and GELU
  const int64_t layer = t * (9 * d + c.num_attention_heads + 2 * c.intermediate_size + drop);
  const int64_t embed = patches + 3 * t * d;  // projection, [cls, patches] + positions
  // backward: one layer's activation gradients at a time (+ its recomputation when checkpointing)
  const int64_t layers = c.num_hidden_layers * (checkpointing ? t * d : layer) + (checkpointing ? 2 : 1) * layer;
  return static_cast<int64_t>(sizeof(float)) * (embed + layers + 2 * t * d);
}

}  // namespace perceiver::models
