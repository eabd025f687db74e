// The generic Perceiver IO model (HF PerceiverModel) and the six HF task classes: which
// preprocessor, decoder and postprocessor each wires up (spec 6, 9), the encoder forward with
// its padding mask (spec 3, 4, 8), subsampled and chunked decoding, and the task losses.
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/models/perceiver_io/perceiver_io.h"

#include <algorithm>
#include <limits>

#include "perceiver/autograd/functions.h"
#include "perceiver/models/perceiver_io/tensor_ops.h"
#include "perceiver/ops/elementwise.h"

namespace perceiver::models::perceiver_io {

namespace {

std::vector<int64_t> int_list(const Tensor& t, const std::string& name) {
  check(t.dtype() == DType::kI32 && t.rank() == 1, "[perceiver_io] ", name,
        ": expected a 1-D integer tensor of output indices, got ", dtype_name(t.dtype()), shape_str(t.shape()));
  const int32_t* p = t.data<int32_t>();
  return std::vector<int64_t>(p, p + t.numel());
}

const Tensor& integer_labels(const TensorMap& inputs, const std::string& name) {
  const Tensor& t = require_input(inputs, name, "perceiver_io loss");
  check(t.dtype() == DType::kI32, "[perceiver_io] ", name, ": expected integer class labels, got ",
        dtype_name(t.dtype()));
  return t;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// PerceiverModel

PerceiverModel::PerceiverModel(const HfPerceiverConfig& config, std::shared_ptr<Preprocessor> preprocessor,
                               std::shared_ptr<Decoder> decoder,
                               std::shared_ptr<MultimodalPostprocessor> postprocessor, Rng& rng)
    : config_(config),
      preprocessor_(std::move(preprocessor)),
      decoder_(std::move(decoder)),
      postprocessor_(std::move(postprocessor)) {
  const auto& c = config_;
  const bool kv = c.cross_attention_shape_for_attention == "kv";
  register_module("input_preprocessor", preprocessor_);
  // PerceiverEmbeddings: latents (num_latents, d_latents)
  latents_ = register_parameter("embeddings.latents", nn::init_truncated_normal({c.num_latents, c.d_latents}, 0.02f, rng));
  // PerceiverEncoder: one cross-attention (latents <- the preprocessed inputs, kv_dim wide), then
  // num_blocks x self_attends.{0..S-1} (always with the query residual)
  nn::PerceiverEncoderConfig enc;
  enc.cross.q_dim = c.d_latents;
  enc.cross.kv_dim = preprocessor_->num_channels();
  enc.cross.qk_channels = c.qk_channels;
  enc.cross.v_channels = c.v_channels;
  enc.cross.num_heads = static_cast<int>(c.num_cross_attention_heads);
  enc.cross.widening_factor = static_cast<int>(c.cross_attention_widening_factor);
  enc.cross.use_query_residual = c.use_query_residual;
  enc.self.q_dim = c.d_latents;
  enc.self.qk_channels = c.qk_channels;
  enc.self.v_channels = c.v_channels;
  enc.self.num_heads = static_cast<int>(c.num_self_attention_heads);
  enc.self.widening_factor = static_cast<int>(c.self_attention_widening_factor);
  enc.self_attends_per_block = static_cast<int>(c.num_self_attends_per_block);
  enc.num_blocks = static_cast<int>(c.num_blocks);
  enc.cross_shape_kv = kv;
  encoder_ = register_module("encoder", std::make_shared<nn::PerceiverEncoder>(enc, rng, "[perceiver_io] encoder"));
  register_module("decoder", decoder_);
  if (postprocessor_) register_module("output_postprocessor", postprocessor_);
}

int64_t PerceiverModel::activation_floats(int64_t m, bool checkpointing) const {
  // preprocessed inputs: the projection, the position encoding and their concatenation
  int64_t kept = 3 * m * preprocessor_->num_channels();
  int64_t largest = 0;
  kept += encoder_->activation_floats(config_.num_latents, m, checkpointing, &largest);
  return kept + (checkpointing ? 2 : 1) * largest;
}

std::pair<Preprocessed, Tensor> PerceiverModel::encoder_input(const TensorMap& inputs, Rng* rng) const {
  // 1. inputs, modality_sizes = self.input_preprocessor(inputs)                  (B, M, C)
  //    (channels every example shares, e.g. Fourier features, kept apart: Preprocessed::shared)
  Preprocessed pre = preprocessor_->forward(inputs, rng);
  const Tensor& x = pre.inputs;
  const int64_t batch = x.dim(0), m = x.dim(1);
  const int64_t channels = x.dim(2) + (pre.shared.defined() ? pre.shared.dim(1) : 0);
  check(channels == preprocessor_->num_channels(), "[perceiver_io] the preprocessor produced ", channels,
        " channels, the encoder expects ", preprocessor_->num_channels());
  // 2. extended mask = (1 - attention_mask) * float32_min, used only by the cross-attention (B, M)
  Tensor key_mask;
  auto am = inputs.find("attention_mask");
  if (am != inputs.end() && am->second.defined()) {
    const Tensor mask = to_float(am->second);
    check(mask.shape() == Shape({batch, m}), "[perceiver_io] attention_mask: expected (", batch, ", ", m,
          ") to match the encoder input, got ", shape_str(mask.shape()));
    key_mask = Tensor::empty({batch, m});
    const float lowest = std::numeric_limits<float>::lowest();
    float* km = key_mask.f32();
    const float* mk = mask.f32();
    for (int64_t i = 0; i < batch * m; ++i) km[i] = (1.0f - mk[i]) * lowest;
  }
  return {std::move(pre), key_mask};
}

Tensor PerceiverModel::cross_attention_probs(const TensorMap& inputs) const {
  autograd::NoGradGuard no_grad;
  const auto [pre, key_mask] = encoder_input(inputs, nullptr);
  return encoder_->cross_attention_probs(ag::expand_leading(latents_, pre.inputs.dim(0)), pre.inputs, key_mask,
                                        pre.shared);
}

EncoderState PerceiverModel::encode(const TensorMap& inputs, TensorMap* trace, Rng* rng) const {
  auto [pre, key_mask] = encoder_input(inputs, rng);
  const Tensor& x = pre.inputs;
  const int64_t batch = x.dim(0);
  // 3. latents broadcast to the batch; one cross-attention, then the self-attention block
  //    re-applied num_blocks times with the same weights                          (B, N, D)
  Tensor z = ag::expand_leading(latents_, batch);
  std::vector<Tensor> each;
  z = encoder_->forward(z, x, key_mask, nullptr, trace ? &each : nullptr, pre.shared);
  if (trace) {
    (*trace)["encoder_input"] = pre.full_inputs().detach();
    (*trace)["latents_initial"] = latents_.detach();
    (*trace)["latents_after_cross_attention"] = each.front();
    each.erase(each.begin());
    if (!each.empty()) (*trace)["latents_after_each_self_attention"] = stack(each);
    (*trace)["latents_final"] = z.detach();
  }
  return {pre, z};
}

// ---------------------------------------------------------------------------------------------
// PerceiverIO: the task classes

PerceiverIO::PerceiverIO(const HfPerceiverConfig& config, uint64_t init_seed) : config_(config) {
  const auto& c = config_;
  Rng rng(init_seed);
  const bool kv = c.cross_attention_shape_for_attention == "kv";
  std::shared_ptr<Preprocessor> pre;
  std::shared_ptr<Decoder> dec;
  std::shared_ptr<MultimodalPostprocessor> post;

  // Settings every PerceiverClassificationDecoder of an image model shares.
  const auto classification = [&]() {
    BasicDecoderConfig d;
    d.output_num_channels = c.num_labels;
    d.position_encoding_type = "trainable";
    d.num_channels = c.d_latents;
    d.trainable_index_dim = 1;
    d.trainable_channels = c.d_latents;
    d.use_query_residual = true;
    d.d_latents = c.d_latents;
    d.cross_shape_kv = kv;
    return std::make_shared<ClassificationDecoder>(d, rng);
  };

  switch (c.task) {
    case PerceiverTask::kMaskedLM:
    case PerceiverTask::kTokenClassification: {
      // PerceiverTextPreprocessor + PerceiverBasicDecoder(8 heads, qk 8*32, v d_model, 2048
      // trainable queries, no query residual) + for the masked LM no final layer and the
      // PerceiverEmbeddingDecoder; for token classification (not in HF) the decoder's final
      // layer d_model -> num_labels at every position
      const bool tokens = c.task == PerceiverTask::kTokenClassification;
      text_ = std::make_shared<TextPreprocessor>(c.vocab_size, c.d_model, c.max_position_embeddings, rng);
      pre = text_;
      BasicDecoderConfig d;
      d.output_num_channels = tokens ? c.num_labels : c.d_latents;
      d.position_encoding_type = "trainable";
      d.output_index_dims = {c.max_position_embeddings};
      d.num_channels = c.d_model;
      d.qk_channels = 8 * 32;
      d.v_channels = c.d_model;
      d.num_heads = 8;
      d.use_query_residual = false;
      d.final_project = tokens;
      d.trainable_index_dim = c.max_position_embeddings;
      d.trainable_channels = c.d_model;
      d.d_latents = c.d_latents;
      d.cross_shape_kv = kv;
      dec = std::make_shared<BasicDecoder>(d, rng);
      break;
    }
    case PerceiverTask::kSequenceClassification: {
      // PerceiverTextPreprocessor + PerceiverClassificationDecoder (one trainable d_latents query)
      text_ = std::make_shared<TextPreprocessor>(c.vocab_size, c.d_model, c.max_position_embeddings, rng);
      pre = text_;
      dec = classification();
      break;
    }
    case PerceiverTask::kImageClassificationLearned: {
      // conv1x1 3 -> 256, trainable positions (image_size^2, 256) projected 256 -> 256, concat
      ImagePreprocessorConfig p;
      p.prep_type = "conv1x1";
      p.spatial_downsample = 1;
      p.out_channels = 256;
      p.position_encoding_type = "trainable";
      p.concat_or_add_pos = "concat";
      p.project_pos_dim = 256;
      p.trainable_index_dim = c.image_size * c.image_size;
      p.trainable_channels = 256;
      image_ = std::make_shared<ImagePreprocessor>(p, rng);
      pre = image_;
      dec = classification();
      break;
    }
    case PerceiverTask::kImageClassificationFourier: {
      // raw pixels + 2-D Fourier features (64 bands, max_resolution 224 x 224)
      ImagePreprocessorConfig p;
      p.prep_type = "pixels";
      p.spatial_downsample = 1;
      p.position_encoding_type = "fourier";
      p.fourier = {64, {224, 224}, true, false};
      image_ = std::make_shared<ImagePreprocessor>(p, rng);
      pre = image_;
      dec = classification();
      break;
    }
    case PerceiverTask::kImageClassificationConv: {
      // conv stem (downsample 4) + 2-D Fourier features (64 bands, max_resolution 56 x 56)
      ImagePreprocessorConfig p;
      p.prep_type = "conv";
      p.spatial_downsample = 4;
      p.position_encoding_type = "fourier";
      p.fourier = {64, {56, 56}, true, false};
      image_ = std::make_shared<ImagePreprocessor>(p, rng);
      pre = image_;
      dec = classification();
      break;
    }
    case PerceiverTask::kOpticalFlow: {
      // patches (temporal block 2) -> Linear 54 -> 64 + 2-D Fourier (64 bands over train_size);
      // the flow decoder queries with the encoder input itself
      ImagePreprocessorConfig p;
      p.prep_type = "patches";
      p.spatial_downsample = 1;
      p.temporal_downsample = 2;
      p.conv_after_patching = true;
      p.conv_after_patching_in_channels = 54;
      p.position_encoding_type = "fourier";
      p.fourier = {64, c.train_size, true, false};
      image_ = std::make_shared<ImagePreprocessor>(p, rng);
      pre = image_;
      BasicDecoderConfig d;
      d.output_num_channels = 2;
      d.position_encoding_type = "fourier";
      d.fourier = {64, c.train_size, true, false};
      d.num_channels = image_->num_channels();
      d.use_query_residual = false;
      d.d_latents = c.d_latents;
      d.cross_shape_kv = kv;
      dec = std::make_shared<OpticalFlowDecoder>(d, c.train_size, 100.0f, rng);
      break;
    }
    case PerceiverTask::kMultimodalAutoencoding: {
      const int64_t n_audio_samples = c.num_frames * c.audio_samples_per_frame;
      const FourierSpec audio_pos{192, {n_audio_samples}, true, false};
      const FourierSpec video_pos{32, {c.num_frames, c.image_size, c.image_size}, true, false};
      // audio patches + 1-D Fourier; video space-to-depth 4x4 + 3-D Fourier; label one-hot
      AudioPreprocessorConfig ap;
      ap.samples_per_patch = c.samples_per_patch;
      ap.fourier = audio_pos;
      ImagePreprocessorConfig ip;
      ip.prep_type = "patches";
      ip.spatial_downsample = 4;
      ip.temporal_downsample = 1;
      ip.position_encoding_type = "fourier";
      ip.fourier = video_pos;
      std::map<std::string, std::shared_ptr<ModalityPreprocessor>> mods = {
          {"audio", std::make_shared<AudioPreprocessor>(ap, rng)},
          {"image", std::make_shared<ImagePreprocessor>(ip, rng)},
          {"label", std::make_shared<OneHotPreprocessor>(c.num_labels)},
      };
      pre = std::make_shared<MultimodalPreprocessor>(mods, std::map<std::string, float>{{"image", 0.0f}, {"audio", 0.0f}, {"label", 1.0f}},
                                                     4, rng);
      // per-modality query builders (position encodings only)
      BasicDecoderConfig audio_q;
      audio_q.position_encoding_type = "fourier";
      audio_q.position_encoding_only = true;
      audio_q.output_index_dims = {n_audio_samples / c.samples_per_patch};
      audio_q.output_num_channels = c.output_num_channels;
      audio_q.fourier = audio_pos;
      BasicDecoderConfig image_q = audio_q;
      image_q.output_index_dims.assign(c.output_shape.begin() + 1, c.output_shape.end());  // (T, H, W)
      image_q.fourier = video_pos;
      BasicDecoderConfig label_q = audio_q;
      label_q.position_encoding_type = "trainable";
      label_q.output_index_dims = {1};
      label_q.trainable_index_dim = 1;
      label_q.trainable_channels = c.label_trainable_num_channels;
      std::map<std::string, std::pair<std::string, std::shared_ptr<BasicDecoder>>> builders = {
          {"audio", {"modalities.audio", std::make_shared<BasicDecoder>(audio_q, rng)}},
          {"image", {"modalities.image.decoder", std::make_shared<BasicDecoder>(image_q, rng)}},
          {"label", {"modalities.label.decoder", std::make_shared<BasicDecoder>(label_q, rng)}},
      };
      BasicDecoderConfig shared;
      shared.output_num_channels = c.output_num_channels;
      shared.use_query_residual = false;
      shared.d_latents = c.d_latents;
      shared.cross_shape_kv = kv;
      dec = std::make_shared<MultimodalDecoder>(builders, shared, 2, rng);
      post = std::make_shared<MultimodalPostprocessor>(std::map<std::string, std::shared_ptr<Postprocessor>>{
          {"audio", std::make_shared<AudioPostprocessor>(c.output_num_channels, c.samples_per_patch, rng)},
          {"image", std::make_shared<ProjectionPostprocessor>(c.output_num_channels, 3, rng)},
          {"label", std::make_shared<ClassificationPostprocessor>(c.output_num_channels, c.num_labels, rng)},
      });
      break;
    }
  }
  perceiver_ = register_module("perceiver", std::make_shared<PerceiverModel>(c, pre, dec, post, rng));
  if (c.task == PerceiverTask::kMaskedLM)
    embedding_decoder_bias_ = register_parameter("embedding_decoder.bias", Tensor::zeros({c.vocab_size}));
  train(false);
}

std::unique_ptr<PerceiverIO> create_perceiver_io(const HfPerceiverConfig& config, uint64_t init_seed) {
  return std::make_unique<PerceiverIO>(config, init_seed);
}

EncoderState PerceiverIO::encode(const TensorMap& inputs, TensorMap* trace, Rng* rng) const {
  return perceiver_->encode(inputs, trace, rng);
}

Tensor PerceiverIO::cross_attention_probs(const TensorMap& inputs) const { return perceiver_->cross_attention_probs(inputs); }

TensorMap PerceiverIO::head(const Tensor& y, const OutputPoints& points, const EncoderState& state) const {
  if (config_.task == PerceiverTask::kMaskedLM) {
    // PerceiverEmbeddingDecoder: logits = y E^T + bias, E the input embedding matrix (B, O, V)
    return {{"logits", ag::linear(y, text_->embeddings(), embedding_decoder_bias_)}};
  }
  if (auto* post = perceiver_->postprocessor()) {
    // output modality sizes: the number of decoded points per modality
    ModalitySizes sizes;
    const Decoder& dec = perceiver_->decoder();
    for (const std::string& m : dec.output_modalities()) {
      auto it = points.find(m);
      const int64_t n = it == points.end() ? dec.num_outputs(m, state) : static_cast<int64_t>(it->second.size());
      if (n > 0) sizes.emplace_back(m, n);
    }
    return post->forward(y, sizes);
  }
  return {{"logits", y}};
}

TensorMap PerceiverIO::decode(const EncoderState& state, const OutputPoints& points, TensorMap* trace) const {
  const Decoder& dec = perceiver_->decoder();
  // decoder_query = self.decoder.decoder_query(inputs, modality_sizes, subsampled_points)
  Tensor query = dec.query(state, points);                         // (B, O, Cq)
  // decoder_outputs = self.decoder(decoder_query, z)
  Tensor out = dec.forward(query, state.latents, points, state);
  if (trace) {
    (*trace)["decoder_query"] = query.detach();
    (*trace)["decoder_output"] = out.detach();
  }
  TensorMap logits = head(out, points, state);
  if (trace)
    for (const auto& [name, t] : logits) (*trace)[name] = t.detach();
  return logits;
}

TensorMap PerceiverIO::decode_chunked(const EncoderState& state, int64_t chunk_size) const {
  check(chunk_size >= 1, "[perceiver_io] chunk_size must be >= 1, got ", chunk_size);
  const Decoder& dec = perceiver_->decoder();
  const std::vector<std::string> mods = dec.output_modalities();
  std::vector<int64_t> totals;
  int64_t total = 0;
  for (const auto& m : mods) {
    totals.push_back(dec.num_outputs(m, state));
    total += totals.back();
  }
  // Chunks of the concatenated (alphabetical) output positions of all modalities.
  std::map<std::string, std::vector<Tensor>> pieces;
  for (int64_t start = 0; start < total; start += chunk_size) {
    const int64_t end = std::min(total, start + chunk_size);
    OutputPoints points;
    int64_t offset = 0;
    for (size_t i = 0; i < mods.size(); ++i) {
      std::vector<int64_t>& p = points[mods[i]];
      for (int64_t k = std::max(start, offset); k < std::min(end, offset + totals[i]); ++k) p.push_back(k - offset);
      offset += totals[i];
    }
    for (auto& [name, t] : decode(state, points)) pieces[name].push_back(t);
  }
  TensorMap out;
  for (auto& [name, parts] : pieces) out[name] = ag::concat_tokens(parts);
  if (config_.task == PerceiverTask::kOpticalFlow)
    out["logits"] = static_cast<const OpticalFlowDecoder&>(dec).to_image(out["logits"]);
  return out;
}

OutputPoints PerceiverIO::output_points_from_inputs(const TensorMap& inputs) const {
  OutputPoints points;
  const std::string prefix = "subsampled_output_points";
  const std::vector<std::string> mods = perceiver_->decoder().output_modalities();
  for (const auto& [name, t] : inputs) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    std::string m = name.size() == prefix.size() ? "" : name.substr(prefix.size() + 1);
    check(name.size() == prefix.size() || name[prefix.size()] == '.', "[perceiver_io] unexpected input '", name, "'");
    check(std::find(mods.begin(), mods.end(), m) != mods.end(), "[perceiver_io] input '", name,
          "' names no output modality of ", config_.architecture);
    points[m] = int_list(t, name);
  }
  return points;
}

TensorMap PerceiverIO::forward(const TensorMap& inputs, TensorMap* trace, Rng* rng) const {
  EncoderState state = encode(inputs, trace, rng);
  return decode(state, output_points_from_inputs(inputs), trace);
}

std::vector<std::string> PerceiverIO::target_names() const {
  switch (config_.task) {
    case PerceiverTask::kOpticalFlow:
      return {"target"};
    case PerceiverTask::kMultimodalAutoencoding: {
      std::vector<std::string> out;
      for (const auto& m : perceiver_->decoder().output_modalities()) out.push_back("target." + m);
      return out;
    }
    default:
      return {"labels"};
  }
}

Tensor PerceiverIO::loss(const TensorMap& logits, const TensorMap& inputs) const {
  switch (config_.task) {
    case PerceiverTask::kOpticalFlow: {
      // mean((logits - target)^2) over every element
      const Tensor& pred = require_input(logits, "logits", "perceiver_io loss");
      const Tensor target = to_float(require_input(inputs, "target", "perceiver_io loss"));
      check(target.shape() == pred.shape(), "[perceiver_io] target: expected ", shape_str(pred.shape()),
            " (the flow output), got ", shape_str(target.shape()));
      return ag::mse(pred, target);
    }
    case PerceiverTask::kMultimodalAutoencoding: {
      // one MSE over all output elements of all modalities: mse(cat(logits.<m>.reshape(B, -1)), ...)
      Tensor pred, target;
      for (const auto& [name, l] : logits) {
        const std::string m = name.substr(std::string("logits.").size());
        const Tensor t = to_float(require_input(inputs, "target." + m, "perceiver_io loss"));
        check(t.shape() == l.shape(), "[perceiver_io] target.", m, ": expected ", shape_str(l.shape()), ", got ",
              shape_str(t.shape()));
        const int64_t b = l.dim(0);
        Tensor lf = ag::reshape(l, {b, l.numel() / b}), tf = t.reshape({b, t.numel() / b});
        pred = pred.defined() ? ag::concat_last(pred, lf) : lf;
        target = target.defined() ? ops::concat_last(target, tf) : tf;
      }
      check(pred.defined(), "[perceiver_io] no multimodal outputs to compute a loss on");
      return ag::mse(pred, target);
    }
    case PerceiverTask::kSequenceClassification:
      if (config_.num_labels == 1) {
        // regression (HF problem_type "regression" when num_labels == 1): mse(logits (B, 1), labels)
        const Tensor& pred = require_input(logits, "logits", "perceiver_io loss");
        const Tensor target = to_float(require_input(inputs, "labels", "perceiver_io loss"));
        check(target.numel() == pred.numel(), "[perceiver_io] labels: expected ", pred.numel(),
              " regression targets (logits ", shape_str(pred.shape()), "), got ", shape_str(target.shape()));
        return ag::mse(pred, target.reshape(pred.shape()));
      }
      [[fallthrough]];
    default: {
      // cross_entropy(logits.reshape(-1, K), labels.reshape(-1)), labels < 0 ignored
      const Tensor& l = require_input(logits, "logits", "perceiver_io loss");
      const Tensor& labels = integer_labels(inputs, "labels");
      const int64_t k = l.dim(-1), rows = l.numel() / k;
      check(labels.numel() == rows, "[perceiver_io] labels: expected ", rows, " labels (logits ",
            shape_str(l.shape()), "), got ", shape_str(labels.shape()));
      return ag::cross_entropy(ag::reshape(l, {rows, k}), labels.reshape({rows}), 0.0f);
    }
  }
}

}  // namespace perceiver::models::perceiver_io
