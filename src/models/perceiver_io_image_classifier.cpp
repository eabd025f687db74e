// HF Perceiver IO image classifiers behind the run-config classifier interface (see the header).
#include "perceiver/models/perceiver_io_image_classifier.h"

#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/ops/layout.h"
#include "perceiver/ops/elementwise.h"

namespace perceiver::models {
namespace {

using perceiver_io::PerceiverTask;

bool is_image_classification(PerceiverTask t) {
  return t == PerceiverTask::kImageClassificationLearned || t == PerceiverTask::kImageClassificationFourier ||
         t == PerceiverTask::kImageClassificationConv;
}

}  // namespace

nlohmann::json normalize_perceiver_io_classifier_config(const nlohmann::json& j, const std::string& path) {
  JsonObject o(j, path);
  o.get_string("type", "perceiver_io", {"perceiver_io"});
  const int64_t in_channels = o.get_int("in_channels", 1, 1, 3);
  if (in_channels == 2) o.fail("in_channels", "1 (grey, repeated to RGB) or 3 (RGB)", j.at("in_channels"));
  const nlohmann::json* hub = o.find("hub_config");
  o.finish();
  if (hub == nullptr)
    throw_error("[config] ", path, ".hub_config: missing; expected the path of a Hugging Face config.json or its "
                "object (\"architectures\": [\"PerceiverForImageClassificationLearned\"], ...)");
  nlohmann::json hub_json;
  std::string where = path + ".hub_config";
  if (hub->is_string()) {
    where = hub->get<std::string>();
    hub_json = read_json_file(where, "config");
  } else if (hub->is_object()) {
    hub_json = *hub;
  } else {
    o.fail("hub_config", "the path of a config.json or a JSON object", *hub);
  }
  const perceiver_io::HfPerceiverConfig c = perceiver_io::parse_hf_config(hub_json, where);
  // every class trains: the image classifiers on image data, the masked LM, sequence and token
  // classifiers on text, optical flow on flow_synth / flow_folder, the multimodal autoencoder on
  // moving_av (train/task.h checks that the data format fits the class)
  if (!is_image_classification(c.task)) {  // no image channels
    if (j.contains("in_channels"))
      throw_error("[config] ", path, ".in_channels: applies to image classifiers, not to ", c.architecture);
    return {{"type", "perceiver_io"}, {"hub_config", perceiver_io::to_hub_json(c)}};
  }
  return {{"type", "perceiver_io"}, {"in_channels", in_channels}, {"hub_config", perceiver_io::to_hub_json(c)}};
}

PerceiverIOImageClassifier::PerceiverIOImageClassifier(const nlohmann::json& normalized, uint64_t seed)
    : config_(normalized) {
  const perceiver_io::HfPerceiverConfig c = perceiver_io::parse_hf_config(normalized.at("hub_config"), "model.hub_config");
  if (!is_image_classification(c.task))
    throw_error("[config] model.hub_config: ", c.architecture, " is not an image classifier (image data, `predict`); "
                "train it from data.format ", c.task == PerceiverTask::kMaskedLM ? "\"text\""
                : c.task == PerceiverTask::kTokenClassification ? "\"tagged_text\""
                : c.task == PerceiverTask::kOpticalFlow ? "\"flow_synth\" or \"flow_folder\""
                : c.task == PerceiverTask::kMultimodalAutoencoding ? "\"moving_av\"" : "\"labelled_text\"");
  in_channels_ = normalized.value("in_channels", int64_t(1));
  model_ = register_module("", std::make_shared<perceiver_io::PerceiverIO>(c, seed));
}

std::vector<int64_t> PerceiverIOImageClassifier::image_size() const {
  return {model_->config().image_size, model_->config().image_size};
}

Tensor PerceiverIOImageClassifier::forward(const Tensor& images, Rng* rng) const {
  const int64_t s = model_->config().image_size;
  check(images.defined() && images.dtype() == DType::kF32, "[", architecture(), "] images must be float32");
  const int64_t b = images.rank() > 0 ? images.dim(0) : 0;
  const bool grey = images.shape() == Shape{b, s, s} || (in_channels_ == 1 && images.shape() == Shape{b, s, s, 1});
  check(grey || (in_channels_ == 3 && images.shape() == Shape{b, s, s, 3}), "[", architecture(), "] images must be ",
        shape_str(in_channels_ == 1 ? Shape{b, s, s} : Shape{b, s, s, 3}), ", got ", shape_str(images.shape()));
  // inputs = channel-first RGB (B, 3, H, W): grey repeated, colour permuted from (B, H, W, 3)
  // (data, never a gradient: plain ops)
  Tensor x;
  if (grey) {
    const Tensor g = images.reshape({b, 1, s * s});
    x = ops::concat_last(ops::concat_last(g, g), g).reshape({b, 3, s, s});  // (B, 1, 3*H*W) = (B, 3, H, W)
  } else {
    x = ops::channels_last_tokens_backward(images.reshape({b, s * s, 3}), {b, 3, s, s});
  }
  return require_input(model_->forward({{"inputs", x}}, nullptr, rng), "logits", architecture());
}

TensorMap PerceiverIOImageClassifier::forward(const TensorMap& inputs, TensorMap* trace, Rng* rng) const {
  return model_->forward(inputs, trace, rng);
}

int64_t PerceiverIOImageClassifier::training_activation_bytes(bool checkpointing) const {
  const int64_t m = model_->config().image_size * model_->config().image_size;
  // the images in RGB, the encoder, and the decoder's one query through its cross-attention
  const int64_t floats = 4 * 3 * m + model_->perceiver().activation_floats(m, checkpointing) +
                         8 * model_->config().d_latents;
  return static_cast<int64_t>(sizeof(float)) * floats;
}

}  // namespace perceiver::models
