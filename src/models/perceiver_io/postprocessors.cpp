// Multimodal output postprocessors (HF modeling_perceiver, spec 7).
#include "perceiver/models/perceiver_io/postprocessors.h"

#include "perceiver/autograd/functions.h"
#include "perceiver/models/perceiver_io/tensor_ops.h"

namespace perceiver::models::perceiver_io {

ClassificationPostprocessor::ClassificationPostprocessor(int64_t in_channels, int64_t num_labels, Rng& rng) {
  classifier_ = register_module("classifier", std::make_shared<nn::Linear>(in_channels, num_labels, true, rng));
}

Tensor ClassificationPostprocessor::forward(const Tensor& x) const {
  // logits = self.classifier(inputs); return logits[:, 0, :]                     (B, K)
  Tensor logits = classifier_->forward(x.dim(1) == 1 ? x : ag::slice_tokens(x, 0, 1));
  return ag::reshape(logits, {logits.dim(0), logits.dim(2)});
}

AudioPostprocessor::AudioPostprocessor(int64_t in_channels, int64_t samples_per_patch, Rng& rng) {
  classifier_ = register_module("classifier", std::make_shared<nn::Linear>(in_channels, samples_per_patch, true, rng));
}

Tensor AudioPostprocessor::forward(const Tensor& x) const {
  // torch.reshape(self.classifier(inputs), [B, -1])                              (B, n * spp)
  Tensor logits = classifier_->forward(x);
  return ag::reshape(logits, {logits.dim(0), logits.dim(1) * logits.dim(2)});
}

ProjectionPostprocessor::ProjectionPostprocessor(int64_t in_channels, int64_t out_channels, Rng& rng) {
  classifier_ = register_module("classifier", std::make_shared<nn::Linear>(in_channels, out_channels, true, rng));
}

Tensor ProjectionPostprocessor::forward(const Tensor& x) const { return classifier_->forward(x); }

MultimodalPostprocessor::MultimodalPostprocessor(std::map<std::string, std::shared_ptr<Postprocessor>> modalities)
    : modalities_(std::move(modalities)) {
  for (const auto& [m, p] : modalities_) register_module("modalities." + m, p);
}

TensorMap MultimodalPostprocessor::forward(const Tensor& x, const ModalitySizes& sizes) const {
  // restructure(modality_sizes, inputs): consecutive row blocks in alphabetical order
  TensorMap out;
  int64_t start = 0;
  for (const auto& [m, n] : sizes) {
    auto it = modalities_.find(m);
    check(it != modalities_.end(), "[multimodal_postprocessor] no postprocessor for modality '", m, "'");
    const bool whole = start == 0 && n == x.dim(1);
    out["logits." + m] = it->second->forward(whole ? x : ag::slice_tokens(x, start, n));
    start += n;
  }
  check(start == x.dim(1), "[multimodal_postprocessor] modality sizes add up to ", start,
        " rows, the decoder output has ", x.dim(1));
  return out;
}

}  // namespace perceiver::models::perceiver_io
