// Input preprocessors, line by line after HF modeling_perceiver (spec 5.5-5.9).
#include "perceiver/models/perceiver_io/preprocessors.h"

#include <cmath>
#include <utility>

#include "perceiver/autograd/functions.h"
#include "perceiver/models/perceiver_io/tensor_ops.h"
#include "perceiver/nn/perceiver_layer.h"

namespace perceiver::models::perceiver_io {

Tensor Preprocessed::full_inputs() const { return nn::full_rows(inputs, shared); }

Preprocessed ModalityPreprocessor::forward(const TensorMap& inputs, Rng*) const {
  return process_split(require_input(inputs, "inputs", "preprocessor"));
}

// ---------------------------------------------------------------------------------------------
// PerceiverTextPreprocessor

TextPreprocessor::TextPreprocessor(int64_t vocab_size, int64_t d_model, int64_t max_positions, Rng& rng) {
  embeddings_ = register_parameter("embeddings.weight", nn::init_truncated_normal({vocab_size, d_model}, 0.02f, rng));
  position_embeddings_ = register_parameter("position_embeddings.weight",
                                            nn::init_truncated_normal({max_positions, d_model}, 0.02f, rng));
}

Tensor TextPreprocessor::process(const Tensor& ids) const {
  check(ids.defined() && ids.dtype() == DType::kI32 && ids.rank() == 2,
        "[text_preprocessor] inputs: expected integer token ids (B, L), got ",
        ids.defined() ? dtype_name(ids.dtype()) + shape_str(ids.shape()) : std::string("undefined"));
  const int64_t len = ids.dim(1), max_len = position_embeddings_.dim(0);
  check(len >= 1 && len <= max_len, "[text_preprocessor] inputs: expected a length in [1, ",
        max_len, "] (max_position_embeddings), got ", len);
  // embeddings = self.embeddings(inputs) + self.position_embeddings(arange(L))     (B, L, C)
  std::vector<int64_t> positions(static_cast<size_t>(len));
  for (int64_t i = 0; i < len; ++i) positions[i] = i;
  return ag::add(ag::embedding(ids, embeddings_), gather_rows(position_embeddings_, positions));
}

// ---------------------------------------------------------------------------------------------
// PerceiverImagePreprocessor

ImagePreprocessor::ImagePreprocessor(const ImagePreprocessorConfig& config, Rng& rng) : c_(config) {
  const auto& c = c_;
  const auto one_of = [](const std::string& v, std::initializer_list<const char*> allowed) {
    for (const char* a : allowed)
      if (v == a) return true;
    return false;
  };
  check(one_of(c.prep_type, {"conv", "conv1x1", "pixels", "patches"}),
        "[image_preprocessor] prep_type: expected conv, conv1x1, pixels or patches, got ", c.prep_type);
  check(one_of(c.position_encoding_type, {"fourier", "trainable"}),
        "[image_preprocessor] position_encoding_type: expected fourier or trainable, got ", c.position_encoding_type);
  check(one_of(c.concat_or_add_pos, {"concat", "add"}),
        "[image_preprocessor] concat_or_add_pos: expected concat or add, got ", c.concat_or_add_pos);
  check(c.spatial_downsample >= 1 && c.temporal_downsample >= 1,
        "[image_preprocessor] downsampling factors must be >= 1");
  if (c.prep_type == "conv") {
    // HF: spatial_downsample must be a power of 4; one conv + pool stage downsamples by 4.
    const double layers = std::log(static_cast<double>(c.spatial_downsample)) / std::log(4.0);
    check(std::abs(layers - std::round(layers)) < 1e-9 && c.temporal_downsample == 1,
          "[image_preprocessor] conv: spatial_downsample must be a power of 4 and temporal_downsample 1, got ",
          c.spatial_downsample, " and ", c.temporal_downsample);
    convnet_ = register_module("convnet", std::make_shared<ConvDownsample>(c.in_channels, c.out_channels,
                                                                           c.conv2d_use_batchnorm, rng));
  } else if (c.prep_type == "conv1x1") {
    check(c.temporal_downsample == 1, "[image_preprocessor] conv1x1: temporal_downsample must be 1");
    const float std = 1.0f / std::sqrt(static_cast<float>(c.in_channels));
    conv1x1_weight_ = register_parameter("convnet_1x1.weight",
                                         nn::init_truncated_normal({c.out_channels, c.in_channels, 1, 1}, std, rng));
    conv1x1_bias_ = register_parameter("convnet_1x1.bias", Tensor::zeros({c.out_channels}));
  }
  if (c.conv_after_patching)
    conv_after_patches_ = register_module(
        "conv_after_patches", std::make_shared<nn::Linear>(c.conv_after_patching_in_channels, c.out_channels, true, rng));
  if (c.position_encoding_type == "trainable")
    trainable_ = register_module("position_embeddings", std::make_shared<TrainablePositionEncoding>(
                                                            c.trainable_index_dim, c.trainable_channels, rng));
  // build_position_encoding: Linear(out_channels, project_pos_dim) when project_pos_dim > 0
  if (c.project_pos_dim > 0)
    positions_projection_ = register_module(
        "positions_projection", std::make_shared<nn::Linear>(c.out_channels, c.project_pos_dim, true, rng));
}

int64_t ImagePreprocessor::num_channels() const {
  // HF PerceiverImagePreprocessor.num_channels
  const auto& c = c_;
  const bool fourier = c.position_encoding_type == "fourier";
  const bool is_temporal = fourier && c.fourier.num_dimensions() > 2;
  const int64_t pos_dim = c.project_pos_dim > 0 ? c.project_pos_dim
                          : fourier              ? c.fourier.output_size()
                                                 : c.trainable_channels;
  if (c.concat_or_add_pos == "add") return pos_dim;
  int64_t inp_dim = 0;
  if (c.conv_after_patching || c.prep_type == "conv1x1" || c.prep_type == "conv") {
    inp_dim = c.out_channels;
  } else if (c.prep_type == "pixels") {
    inp_dim = c.in_channels;
    if (!is_temporal) inp_dim = (inp_dim + c.spatial_downsample - 1) / c.spatial_downsample;
  } else {  // patches
    inp_dim = c.in_channels * c.spatial_downsample * c.spatial_downsample;
    if (is_temporal) inp_dim *= c.temporal_downsample;
  }
  return inp_dim + pos_dim;
}

Tensor ImagePreprocessor::features(const Tensor& x, std::vector<int64_t>& index_dims) const {
  const auto& c = c_;
  check(x.defined() && (x.rank() == 4 || x.rank() == 5), "[image_preprocessor] inputs: expected (B, C, H, W) "
        "images or (B, T, C, H, W) videos, got ", x.defined() ? shape_str(x.shape()) : "undefined");
  const int64_t batch = x.dim(0);
  Tensor f;  // (B, i_1, ..., i_k, C)
  if (c.prep_type == "conv") {
    // inputs = self.convnet(inputs); channels moved last
    check(x.rank() == 4, "[image_preprocessor] conv: expected (B, C, H, W), got ", shape_str(x.shape()));
    Tensor y = convnet_->forward(to_float(x));                 // (B, C, H', W')
    index_dims = {y.dim(2), y.dim(3)};
    return nchw_to_tokens(y);                                  // (B, H'W', C)
  }
  if (c.prep_type == "conv1x1") {
    // inputs = self.convnet_1x1(inputs) (kernel 1, stride spatial_downsample); channels last
    check(x.rank() == 4 && x.dim(1) == c.in_channels, "[image_preprocessor] conv1x1: expected (B, ",
          c.in_channels, ", H, W), got ", shape_str(x.shape()));
    Tensor px = channels_last(x);                              // (B, H, W, Cin)
    const int64_t s = c.spatial_downsample, h = px.dim(1), w = px.dim(2);
    const int64_t ho = (h - 1) / s + 1, wo = (w - 1) / s + 1;
    if (s > 1) {
      Tensor sub = Tensor::empty({batch, ho, wo, c.in_channels});
      float* dst = sub.f32();
      const float* src = std::as_const(px).f32();
      for (int64_t n = 0; n < batch; ++n)
        for (int64_t i = 0; i < ho; ++i)
          for (int64_t j = 0; j < wo; ++j)
            for (int64_t ch = 0; ch < c.in_channels; ++ch)
              dst[((n * ho + i) * wo + j) * c.in_channels + ch] = src[((n * h + i * s) * w + j * s) * c.in_channels + ch];
      px = sub;
    }
    index_dims = {ho, wo};
    // a 1x1 convolution is a Linear over channels: W (Cout, Cin, 1, 1) viewed as (Cout, Cin)
    Tensor w2 = ag::reshape(conv1x1_weight_, {c.out_channels, c.in_channels});
    return ag::linear(px.reshape({batch, ho * wo, c.in_channels}), w2, conv1x1_bias_);
  }
  if (c.prep_type == "pixels") {
    // inputs[::s, ::s] (4-D) or inputs[:, ::t, :, ::s, ::s] (5-D); channels last
    if (x.rank() == 4) {
      check(c.spatial_downsample == 1, "[image_preprocessor] pixels with spatial_downsample > 1 on 4-D "
            "input slices the batch and channel axes in HF; not supported");
      f = channels_last(x);                                     // (B, H, W, C)
    } else {
      Tensor v = channels_last(x);                              // (B, T, H, W, C)
      const int64_t t = v.dim(1), h = v.dim(2), w = v.dim(3), ch = v.dim(4);
      const int64_t st = c.temporal_downsample, ss = c.spatial_downsample;
      const int64_t to = (t - 1) / st + 1, ho = (h - 1) / ss + 1, wo = (w - 1) / ss + 1;
      f = Tensor::empty({batch, to, ho, wo, ch});
      float* dst = f.f32();
      const float* src = std::as_const(v).f32();
      for (int64_t n = 0; n < batch; ++n)
        for (int64_t a = 0; a < to; ++a)
          for (int64_t i = 0; i < ho; ++i)
            for (int64_t j = 0; j < wo; ++j)
              for (int64_t k = 0; k < ch; ++k)
                dst[(((n * to + a) * ho + i) * wo + j) * ch + k] = src[(((n * t + a * st) * h + i * ss) * w + j * ss) * ch + k];
    }
  } else {  // patches
    // space_to_depth(inputs, temporal_downsample, spatial_downsample)
    f = space_to_depth(x, c.temporal_downsample, c.spatial_downsample);
    // a 5-D result with one time step is squeezed (optical flow)
    if (f.rank() == 5 && f.dim(1) == 1) {
      Shape s = f.shape();
      s.erase(s.begin() + 1);
      f = f.reshape(s);
    }
  }
  index_dims.assign(f.shape().begin() + 1, f.shape().end() - 1);
  const int64_t tokens = shape_numel(index_dims);
  f = f.reshape({batch, tokens, f.dim(-1)});
  // self.conv_after_patches(inputs): Linear(conv_after_patching_in_channels -> out_channels)
  if (conv_after_patches_) {
    check(f.dim(2) == c.conv_after_patching_in_channels, "[image_preprocessor] patches: expected ",
          c.conv_after_patching_in_channels, " channels after space-to-depth, got ", f.dim(2),
          " (input ", shape_str(x.shape()), ")");
    f = conv_after_patches_->forward(f);
  }
  return f;
}

Tensor ImagePreprocessor::position_encoding(const std::vector<int64_t>& index_dims, int64_t tokens,
                                            int64_t batch) const {
  if (trainable_) {
    // PerceiverTrainablePositionEncoding: the whole table, whatever the input positions
    check(trainable_->size() == tokens, "[image_preprocessor] the trainable position table has ",
          trainable_->size(), " rows but the input gives ", tokens, " tokens (index dims ",
          shape_str(index_dims), "); the input must have exactly that many positions");
    return trainable_->forward(batch);                               // (B, M, P)
  }
  return ag::expand_leading(fourier_grid(index_dims), batch);        // (B, M, F)
}

Tensor ImagePreprocessor::fourier_grid(const std::vector<int64_t>& index_dims) const {
  std::lock_guard<std::mutex> lock(*fourier_cache_mutex_);  // forwards of batch slices run at once
  auto it = fourier_cache_.find(index_dims);
  if (it == fourier_cache_.end()) {
    if (fourier_cache_.size() > 8) fourier_cache_.clear();
    it = fourier_cache_.emplace(index_dims, c_.fourier.grid(index_dims)).first;
  }
  return it->second;
}

Tensor ImagePreprocessor::process(const Tensor& x) const { return process_split(x).full_inputs(); }

Preprocessed ImagePreprocessor::process_split(const Tensor& x) const {
  std::vector<int64_t> index_dims;
  Tensor f = features(x, index_dims);                                // (B, M, Cf)
  const int64_t batch = f.dim(0), tokens = f.dim(1);
  Preprocessed out;
  if (!trainable_ && !positions_projection_ && c_.concat_or_add_pos == "concat") {
    // inputs_with_pos = cat([inputs, fourier(grid)], -1): the grid's features stay shared (M, F)
    out.inputs = f;
    out.shared = fourier_grid(index_dims);
  } else {
    // pos_enc = self.positions_projection(self.position_embeddings(index_dims, batch_size))
    Tensor pos = position_encoding(index_dims, tokens, batch);
    if (positions_projection_) pos = positions_projection_->forward(pos);
    // inputs_with_pos = cat([inputs, pos_enc], -1)  or  inputs + pos_enc
    out.inputs = c_.concat_or_add_pos == "concat" ? ag::concat_last(f, pos) : ag::add(f, pos);
  }
  const int64_t channels = out.inputs.dim(2) + (out.shared.defined() ? out.shared.dim(1) : 0);
  check(channels == num_channels(), "[image_preprocessor] input ", shape_str(x.shape()), " gives ", channels,
        " channels, the model was built for ", num_channels(), " (in_channels ", c_.in_channels, ")");
  return out;
}

// ---------------------------------------------------------------------------------------------
// PerceiverAudioPreprocessor

AudioPreprocessor::AudioPreprocessor(const AudioPreprocessorConfig& config, Rng& rng) : c_(config) {
  check(c_.samples_per_patch >= 1, "[audio_preprocessor] samples_per_patch must be >= 1");
  check(c_.concat_or_add_pos == "concat" || c_.concat_or_add_pos == "add",
        "[audio_preprocessor] concat_or_add_pos: expected concat or add, got ", c_.concat_or_add_pos);
  check(c_.fourier.num_dimensions() == 1, "[audio_preprocessor] the Fourier encoding must be 1-D");
  if (c_.project_pos_dim > 0)
    positions_projection_ = register_module(
        "positions_projection", std::make_shared<nn::Linear>(c_.out_channels, c_.project_pos_dim, true, rng));
}

int64_t AudioPreprocessor::num_channels() const {
  const int64_t pos_dim = c_.project_pos_dim > 0 ? c_.project_pos_dim : c_.fourier.output_size();
  return c_.concat_or_add_pos == "add" ? pos_dim : c_.samples_per_patch + pos_dim;
}

Tensor AudioPreprocessor::process(const Tensor& x) const { return process_split(x).full_inputs(); }

Preprocessed AudioPreprocessor::process_split(const Tensor& x) const {
  check(x.defined() && x.rank() >= 2, "[audio_preprocessor] inputs: expected (B, samples, 1), got ",
        x.defined() ? shape_str(x.shape()) : "undefined");
  const int64_t batch = x.dim(0), per_example = x.numel() / std::max<int64_t>(batch, 1);
  const int64_t spp = c_.samples_per_patch;
  check(per_example % spp == 0, "[audio_preprocessor] inputs ", shape_str(x.shape()), ": ", per_example,
        " samples per example are not a multiple of samples_per_patch ", spp);
  // inputs = reshape(inputs, [B, -1, samples_per_patch])                        (B, M, spp)
  const int64_t patches = per_example / spp;
  Tensor f = to_float(x).reshape({batch, patches, spp});
  // Fourier features over the patch index, frequencies from max_resolution; concatenated
  // unprojected, they stay shared (M, F)
  if (!positions_projection_ && c_.concat_or_add_pos == "concat") return {f, {}, c_.fourier.grid({patches})};
  Tensor pos = ag::expand_leading(c_.fourier.grid({patches}), batch);
  if (positions_projection_) pos = positions_projection_->forward(pos);
  return {c_.concat_or_add_pos == "concat" ? ag::concat_last(f, pos) : ag::add(f, pos), {}, Tensor()};
}

// ---------------------------------------------------------------------------------------------
// PerceiverOneHotPreprocessor

Tensor OneHotPreprocessor::process(const Tensor& x) const {
  check(x.defined() && x.rank() == 2 && x.dim(1) == num_labels_, "[onehot_preprocessor] inputs: expected (B, ",
        num_labels_, "), got ", x.defined() ? shape_str(x.shape()) : "undefined");
  // inputs[:, None, :]
  return to_float(x).reshape({x.dim(0), 1, num_labels_});
}

// ---------------------------------------------------------------------------------------------
// PerceiverMultimodalPreprocessor

MultimodalPreprocessor::MultimodalPreprocessor(std::map<std::string, std::shared_ptr<ModalityPreprocessor>> modalities,
                                               std::map<std::string, float> mask_probs, int64_t min_padding_size,
                                               Rng& rng)
    : modalities_(std::move(modalities)), mask_probs_(std::move(mask_probs)), min_padding_size_(min_padding_size) {
  check(!modalities_.empty(), "[multimodal_preprocessor] needs at least one modality");
  for (const auto& [m, pre] : modalities_) register_module("modalities." + m, pre);
  const int64_t common = num_channels();
  // padding.<m> (1, C - C_m); mask.<m> (1, C) for every modality with a mask probability
  for (const auto& [m, pre] : modalities_)
    padding_[m] = register_parameter("padding." + m, nn::init_truncated_normal({1, common - pre->num_channels()}, 0.02f, rng));
  for (const auto& [m, p] : mask_probs_) {
    check(modalities_.count(m), "[multimodal_preprocessor] mask probability for unknown modality ", m);
    check(p >= 0.0f && p <= 1.0f, "[multimodal_preprocessor] mask probability must be in [0, 1], got ", p);
    mask_[m] = register_parameter("mask." + m, nn::init_truncated_normal({1, common}, 0.02f, rng));
  }
}

int64_t MultimodalPreprocessor::num_channels() const {
  int64_t widest = 0;
  for (const auto& [m, pre] : modalities_) widest = std::max(widest, pre->num_channels());
  return widest + min_padding_size_;
}

Preprocessed MultimodalPreprocessor::forward(const TensorMap& inputs, Rng* rng) const {
  const int64_t common = num_channels();
  Preprocessed out;
  std::vector<Tensor> parts;
  int64_t batch = -1;
  for (const auto& [m, pre] : modalities_) {  // std::map: alphabetical, as HF's sorted(keys)
    Tensor x = pre->process(require_input(inputs, "inputs." + m, "multimodal_preprocessor"));  // (B, M_m, C_m)
    check(batch < 0 || x.dim(0) == batch, "[multimodal_preprocessor] inputs.", m, " has batch ", x.dim(0),
          ", other modalities ", batch);
    batch = x.dim(0);
    const int64_t tokens = x.dim(1);
    // output_padded = cat([output, broadcast(padding[m])], dim=2)                 (B, M_m, C)
    if (common > x.dim(2)) x = ag::concat_last(x, broadcast_row(padding_.at(m), batch, tokens));
    // mask: output = (1 - b) * output + b * mask[m], b ~ Bernoulli(p) per token
    auto mp = mask_probs_.find(m);
    if (mp != mask_probs_.end() && mp->second > 0.0f) {
      Tensor token = broadcast_row(mask_.at(m), batch, tokens);
      if (mp->second >= 1.0f) {
        x = token;  // every token replaced (HF: 0 * output + 1 * mask, exactly the mask)
      } else {
        check(rng != nullptr, "[multimodal_preprocessor] masking with probability ", mp->second, " needs an Rng");
        Tensor keep = Tensor::empty({batch, tokens, common}), drop = Tensor::empty({batch, tokens, common});
        float* kp = keep.f32();
        float* dp = drop.f32();
        for (int64_t t = 0; t < batch * tokens; ++t) {
          const float b = rng->uniform() < mp->second ? 1.0f : 0.0f;
          for (int64_t ch = 0; ch < common; ++ch) {
            kp[t * common + ch] = 1.0f - b;
            dp[t * common + ch] = b;
          }
        }
        x = ag::add(ag::mul(x, keep), ag::mul(token, drop));
      }
    }
    out.modality_sizes.emplace_back(m, tokens);
    parts.push_back(x);
  }
  // final_inputs = cat(padded, dim=1)                                              (B, M, C)
  out.inputs = ag::concat_tokens(parts);
  return out;
}

}  // namespace perceiver::models::perceiver_io
