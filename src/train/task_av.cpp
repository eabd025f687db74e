// The multimodal autoencoding task of train/task.h (data.format "moving_av"): moving
// Fashion-MNIST clips with a spoken-digit soundtrack for PerceiverForMultimodalAutoencoding.
// Training decodes a random subset of the output queries (the paper's subsampling), evaluation
// every query in chunks, so memory stays bounded by the chunk size.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "perceiver/autograd/functions.h"
#include "perceiver/core/allocator.h"
#include "perceiver/core/error.h"
#include "perceiver/data/fashion_mnist.h"
#include "perceiver/models/perceiver_io/perceiver_io.h"
#include "perceiver/models/registry.h"
#include "perceiver/train/task.h"

namespace perceiver::train {
namespace {

using models::TensorMap;
namespace pio = models::perceiver_io;

constexpr int64_t kDecodeChunk = 4096;  // output queries per decoder pass at evaluation

// k distinct indices of [0, n) in random order (a partial Fisher-Yates shuffle; k <= n).
std::vector<int64_t> sample_points(int64_t n, int64_t k, Rng& rng) {
  std::vector<int64_t> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  for (int64_t i = 0; i < k; ++i) std::swap(all[static_cast<size_t>(i)], all[static_cast<size_t>(i + rng.below(static_cast<uint32_t>(n - i)))]);
  all.resize(static_cast<size_t>(k));
  return all;
}

// (1, q): a leading 1, never the batch size, so that splitting a batch into slices (data_parallel)
// leaves the points whole; av_loss passes them on as (q).
Tensor points_tensor(const std::vector<int64_t>& p) {
  Tensor t = Tensor::empty({1, static_cast<int64_t>(p.size())}, DType::kI32);
  for (size_t i = 0; i < p.size(); ++i) t.data<int32_t>()[i] = static_cast<int32_t>(p[i]);
  return t;
}

double squared_error(const Tensor& a, const Tensor& b) {
  double s = 0;
  const float* pa = a.f32();
  const float* pb = b.f32();
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = static_cast<double>(pa[i]) - pb[i];
    s += d * d;
  }
  return s;
}

}  // namespace

void Task::init_av(bool train) {
  const DataConfig& c = config_.data;
  const char* want = "PerceiverForMultimodalAutoencoding";
  const nlohmann::json* hub = config_.model.contains("hub_config") ? &config_.model.at("hub_config") : nullptr;
  if (config_.model.value("type", "") != "perceiver_io" || !hub || models::architecture_of(*hub, "model") != want)
    throw_error("[config] data.format \"moving_av\" trains a ", want, ": expected \"model\": {\"type\": \"perceiver_io\", "
                "\"hub_config\": {\"architectures\": [\"", want, "\"], \"num_frames\": T, \"image_size\": S / 4, "
                "\"output_shape\": [1, T, S, S], \"audio_samples_per_frame\": A, \"num_labels\": 10, ...}}");
  const pio::HfPerceiverConfig hc = pio::parse_hf_config(*hub, "model.hub_config");
  const auto& os = hc.output_shape;
  check(os[1] == hc.num_frames && os[2] == os[3] && os[2] == 4 * hc.image_size, "[config] model.hub_config: the video is "
        "output_shape[1] = num_frames frames of output_shape[2] x output_shape[3] pixels, square, with image_size = side / 4 "
        "(the 4 x 4 patches the encoder reads); got output_shape ", nlohmann::json(os).dump(), ", num_frames ", hc.num_frames,
        ", image_size ", hc.image_size);
  check(hc.num_labels == 10, "[config] model.hub_config.num_labels must be 10 (the Fashion-MNIST classes), got ", hc.num_labels);
  check(hc.audio_samples_per_frame % hc.samples_per_patch == 0, "[config] model.hub_config.audio_samples_per_frame (",
        hc.audio_samples_per_frame, ") must be a multiple of samples_per_patch (", hc.samples_per_patch, ")");
  av_.frames = hc.num_frames;
  av_.size = os[2];
  av_.item_size = std::max<int64_t>(2, av_.size / 2);
  av_.samples_per_frame = hc.audio_samples_per_frame;
  av_audio_patch_ = hc.samples_per_patch;
  av_labels_ = hc.num_labels;
  data::check_moving_av_options(av_);
  const int64_t pixels = av_.frames * av_.size * av_.size, patches = av_.frames * av_.samples_per_frame / av_audio_patch_;
  check(c.image_queries <= pixels && c.audio_queries <= patches, "[config] data.image_queries (", c.image_queries,
        ") and data.audio_queries (", c.audio_queries, ") may not exceed the model's ", pixels, " video and ", patches,
        " audio output queries");
  AllocationBudget data_budget(machine_memory_bytes(), "the audio-visual data of this run config");
  // the training split when training, the test split for the held-out clips
  const data::Dataset test_images = data::load_fashion_mnist(c.dir, false);
  const data::SpokenDigits test_speech = data::load_spoken_digits(c.audio_dir, true);
  const int64_t n_test = c.test_limit > 0 ? std::min(c.test_clips, c.test_limit) : c.test_clips;
  for (int64_t i = 0; i < n_test; ++i) {
    Rng rng(c.split_seed, 0xa7000000ULL + static_cast<uint64_t>(i));
    av_test_.push_back(data::draw_av_clip(test_images, test_speech, av_, rng));
  }
  if (train) {
    av_images_ = data::load_fashion_mnist(c.dir, true);
    av_speech_ = data::load_spoken_digits(c.audio_dir, false);
  }
  train_size_ = train ? (c.train_limit > 0 ? std::min(c.train_clips, c.train_limit) : c.train_clips) : 0;
  test_size_ = static_cast<int64_t>(av_test_.size());
  class_names_ = data::fashion_mnist_class_names();
  num_classes_ = av_labels_;
  AllocationBudget budget(machine_memory_bytes(), "building the model of this run config");
  model_ = models::create_model(*hub, "model.hub_config", config_.train.seed);
}

// Clips as a batch: inputs.image (B, T, 3, S, S), inputs.audio (B, L, 1), inputs.label (B, 10)
// zeros (the label is masked at the input), labels (B); with rng (training) also the subsampled
// output points and their targets: target.image (B, q, 3), target.audio (B, q * patch).
TensorMap Task::av_batch(const std::vector<const data::AvClip*>& clips, Rng* rng) const {
  const int64_t b = static_cast<int64_t>(clips.size()), t = av_.frames, s = av_.size;
  const int64_t len = t * av_.samples_per_frame, frame = 3 * s * s;
  Tensor video = Tensor::empty({b, t, 3, s, s}), audio = Tensor::empty({b, len, 1}), labels = Tensor::empty({b}, DType::kI32);
  for (int64_t i = 0; i < b; ++i) {
    const data::AvClip& c = *clips[static_cast<size_t>(i)];
    std::copy(c.video.f32(), c.video.f32() + t * frame, video.f32() + i * t * frame);
    std::copy(c.audio.f32(), c.audio.f32() + len, audio.f32() + i * len);
    labels.data<int32_t>()[i] = c.label;
  }
  TensorMap batch = {{"inputs.image", video}, {"inputs.audio", audio}, {"inputs.label", Tensor::zeros({b, av_labels_})},
                     {"labels", labels}};
  if (!rng) return batch;
  const DataConfig& dc = config_.data;
  const std::vector<int64_t> img = sample_points(t * s * s, dc.image_queries, *rng);
  const std::vector<int64_t> aud = sample_points(len / av_audio_patch_, dc.audio_queries, *rng);
  Tensor ti = Tensor::empty({b, dc.image_queries, 3}), ta = Tensor::empty({b, dc.audio_queries * av_audio_patch_});
  const float* v = video.f32();
  const float* a = audio.f32();
  float* pti = ti.f32();
  float* pta = ta.f32();
  for (int64_t i = 0; i < b; ++i) {
    for (size_t k = 0; k < img.size(); ++k) {  // point p = (f, y, x) -> the pixel's 3 channels
      const int64_t f = img[k] / (s * s), yx = img[k] % (s * s);
      for (int ch = 0; ch < 3; ++ch)
        pti[(i * dc.image_queries + static_cast<int64_t>(k)) * 3 + ch] = v[((i * t + f) * 3 + ch) * s * s + yx];
    }
    for (size_t k = 0; k < aud.size(); ++k)  // patch p -> its samples
      std::copy(a + i * len + aud[k] * av_audio_patch_, a + i * len + (aud[k] + 1) * av_audio_patch_,
                pta + (i * dc.audio_queries + static_cast<int64_t>(k)) * av_audio_patch_);
  }
  batch["subsampled_output_points.image"] = points_tensor(img);
  batch["subsampled_output_points.audio"] = points_tensor(aud);
  batch["subsampled_output_points.label"] = points_tensor({0});
  batch["target.image"] = ti;
  batch["target.audio"] = ta;
  return batch;
}

// video_weight mse(image) + audio_weight mse(audio) + label_weight cross_entropy(label)
Tensor Task::av_loss(const TensorMap& batch, Rng* rng, EvalResult* stats) const {
  TensorMap in;
  for (const auto& [name, t] : batch) {
    if (name.rfind("inputs.", 0) == 0) in[name] = t;
    if (name.rfind("subsampled_output_points.", 0) == 0) in[name] = t.reshape({t.numel()});
  }
  const TensorMap out = model_->forward(in, nullptr, rng);
  const DataConfig& dc = config_.data;
  const Tensor& li = out.at("logits.image");
  const Tensor& la = out.at("logits.audio");
  const Tensor& ll = out.at("logits.label");
  const Tensor labels = batch.at("labels");
  if (stats) accumulate_predictions(ll, labels, *stats);
  Tensor loss = ag::scale(ag::mse(li, batch.at("target.image")), dc.video_weight);
  loss = ag::add(loss, ag::scale(ag::mse(la, batch.at("target.audio")), dc.audio_weight));
  return ag::add(loss, ag::scale(ag::cross_entropy(ll, labels, 0.0f), dc.label_weight));
}

// Every output query in chunks: the squared errors of the video and audio reconstructions (sums
// video_se / video_n, audio_se / audio_n) and the label predictions.
TensorMap Task::av_decode_all(const TensorMap& batch) const {
  const auto* pm = dynamic_cast<const pio::PerceiverIO*>(model_.get());
  check(pm != nullptr, "[train] moving_av: the model is not a Perceiver IO model");
  const pio::PerceiverIO& p = *pm;
  TensorMap in = {{"inputs.image", batch.at("inputs.image")}, {"inputs.audio", batch.at("inputs.audio")},
                  {"inputs.label", batch.at("inputs.label")}};
  return p.decode_chunked(p.encode(in), kDecodeChunk);
}

void Task::av_evaluate(const TensorMap& batch, EvalResult& r) const {
  const TensorMap out = av_decode_all(batch);
  const int64_t b = batch.at("labels").dim(0), t = av_.frames, s = av_.size;
  // logits.image (B, T*S*S, 3) against the video (B, T, 3, S, S)
  const Tensor& li = out.at("logits.image");
  const float* pred = li.f32();
  const float* video = batch.at("inputs.image").f32();
  double se = 0;
  for (int64_t i = 0; i < b; ++i)
    for (int64_t f = 0; f < t; ++f)
      for (int64_t yx = 0; yx < s * s; ++yx)
        for (int ch = 0; ch < 3; ++ch) {
          const double d = static_cast<double>(pred[((i * t + f) * s * s + yx) * 3 + ch]) -
                           video[((i * t + f) * 3 + ch) * s * s + yx];
          se += d * d;
        }
  r.sums["video_se"] += se;
  r.sums["video_n"] += static_cast<double>(li.numel());
  const Tensor& la = out.at("logits.audio");  // (B, L) against (B, L, 1)
  const Tensor audio = batch.at("inputs.audio").reshape(la.shape());
  r.sums["audio_se"] += squared_error(la, audio);
  r.sums["audio_n"] += static_cast<double>(la.numel());
  // the baseline of predicting silence and a black canvas: the targets' squared sums
  const Tensor& video_in = batch.at("inputs.image");
  r.sums["video_zero_se"] += squared_error(video_in, Tensor::zeros(video_in.shape()));
  r.sums["video_zero_n"] += static_cast<double>(video_in.numel());
  r.sums["audio_zero_se"] += squared_error(audio, Tensor::zeros(audio.shape()));
  r.sums["audio_zero_n"] += static_cast<double>(audio.numel());
  accumulate_predictions(out.at("logits.label"), batch.at("labels"), r);
}

}  // namespace perceiver::train
