// Perceiver IO (Jaegle et al. 2021, arXiv 2107.14795) as implemented by HF modeling_perceiver,
// built from an HF PerceiverConfig and task class so that a hub state dict loads by name:
//
//   x  = input_preprocessor(inputs)                                  (B, M, C)
//   z  = cross_attention(latents, x, mask)                           (B, N, D)
//   repeat num_blocks: for each self_attends.i: z = self_attends.i(z)   (shared weights)
//   q  = decoder_query(x, output points)                             (B, O, Cq)
//   y  = decoder(q, z)                                               (B, O, C) or task shape
//   logits = head(y)   (masked LM: y E^T + bias; multimodal: postprocessors; else y)
//
// PerceiverModel holds everything below "perceiver."; PerceiverIO is the HF task model (adds
// "embedding_decoder.bias" for the masked LM) with the task loss of the fixtures' README 3.2.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "perceiver/models/model.h"
#include "perceiver/models/perceiver_io/decoders.h"
#include "perceiver/models/perceiver_io/hf_config.h"
#include "perceiver/models/perceiver_io/postprocessors.h"
#include "perceiver/models/perceiver_io/preprocessors.h"
#include "perceiver/nn/perceiver_encoder.h"
#include "perceiver/nn/perceiver_layer.h"

namespace perceiver::models::perceiver_io {

// HF PerceiverModel: input_preprocessor, embeddings.latents, encoder, decoder,
// output_postprocessor.
class PerceiverModel : public nn::Module {
 public:
  PerceiverModel(const HfPerceiverConfig& config, std::shared_ptr<Preprocessor> preprocessor,
                 std::shared_ptr<Decoder> decoder, std::shared_ptr<MultimodalPostprocessor> postprocessor,
                 Rng& rng);

  // Preprocess, build the padding mask from "attention_mask" (if given), cross-attend once,
  // then apply the self-attention block num_blocks times. trace (optional) receives
  // encoder_input, latents_initial, latents_after_cross_attention,
  // latents_after_each_self_attention, latents_final.
  EncoderState encode(const TensorMap& inputs, TensorMap* trace, Rng* rng) const;
  // The cross-attention's weights of the latents over the preprocessed inputs (B, H, N, M).
  Tensor cross_attention_probs(const TensorMap& inputs) const;

  // Floats one training sample keeps for backward in the encoder over m preprocessed inputs
  // (the trainer's memory estimate): the preprocessed inputs, the cross-attention and the
  // self-attends of every block; with activation checkpointing only the layer boundaries plus
  // the largest layer recomputed and its gradients.
  int64_t activation_floats(int64_t m, bool checkpointing) const;

  Preprocessor& preprocessor() const { return *preprocessor_; }
  Decoder& decoder() const { return *decoder_; }
  MultimodalPostprocessor* postprocessor() const { return postprocessor_.get(); }
  const Tensor& latents() const { return latents_; }

 private:
  // Steps 1-2 of encode: the preprocessed inputs and the additive key mask (or undefined).
  std::pair<Preprocessed, Tensor> encoder_input(const TensorMap& inputs, Rng* rng) const;

  HfPerceiverConfig config_;
  std::shared_ptr<Preprocessor> preprocessor_;
  Tensor latents_;  // "embeddings.latents" (N, D)
  std::shared_ptr<nn::PerceiverEncoder> encoder_;  // "encoder": cross_attention, self_attends.{i}
  std::shared_ptr<Decoder> decoder_;
  std::shared_ptr<MultimodalPostprocessor> postprocessor_;
};

// An HF Perceiver task model (one of the six checkpoint classes).
class PerceiverIO : public Model {
 public:
  // Builds the task model of config.architecture with freshly initialised weights (load a
  // checkpoint over them with Module::load_state_dict). Starts in eval mode.
  explicit PerceiverIO(const HfPerceiverConfig& config, uint64_t init_seed = 0);

  const HfPerceiverConfig& config() const { return config_; }
  PerceiverTask task() const { return config_.task; }
  std::string architecture() const override { return config_.architecture; }
  nlohmann::json hub_config() const override { return to_hub_json(config_); }
  PerceiverModel& perceiver() const { return *perceiver_; }

  // The encoder pass (see PerceiverModel::encode). Inputs by fixture name: "inputs" (text ids,
  // images, videos, frames) and "attention_mask", or "inputs.<modality>" for the multimodal model.
  EncoderState encode(const TensorMap& inputs, TensorMap* trace = nullptr, Rng* rng = nullptr) const;
  Tensor cross_attention_probs(const TensorMap& inputs) const override;
  // Decodes the selected output points and applies the task head: "logits", or "logits.<m>" for
  // the multimodal model. trace (optional) receives decoder_query and decoder_output.
  TensorMap decode(const EncoderState& state, const OutputPoints& points = {}, TensorMap* trace = nullptr) const;
  // Decodes every output position in chunks of at most chunk_size queries, so the decoder's
  // activations stay bounded; the result equals decode(state).
  TensorMap decode_chunked(const EncoderState& state, int64_t chunk_size) const;
  // encode + decode, the output points taken from the inputs (HF subsampled_output_points:
  // "subsampled_output_points.<m>" for the multimodal model, "subsampled_output_points" for a
  // single-output decoder). trace receives every intermediate tensor under its fixture name.
  TensorMap forward(const TensorMap& inputs, TensorMap* trace = nullptr, Rng* rng = nullptr) const override;
  OutputPoints output_points_from_inputs(const TensorMap& inputs) const;

  // The task's training loss (fixtures README 3.2) on forward() outputs: masked LM and image
  // classifiers: cross-entropy against "labels" (ignoring labels < 0); optical flow: MSE against
  // "target"; multimodal: one MSE over all elements of every "logits.<m>" against "target.<m>".
  Tensor loss(const TensorMap& logits, const TensorMap& inputs) const override;
  // Names of the inputs loss() reads.
  std::vector<std::string> target_names() const override;


 private:
  // decoder output -> logits by name.
  TensorMap head(const Tensor& decoder_output, const OutputPoints& points, const EncoderState& state) const;

  HfPerceiverConfig config_;
  std::shared_ptr<PerceiverModel> perceiver_;
  std::shared_ptr<TextPreprocessor> text_;  // masked LM: its embeddings are the output projection
  Tensor embedding_decoder_bias_;           // masked LM: "embedding_decoder.bias" (V)
  std::shared_ptr<ImagePreprocessor> image_;
};

// The HF task model for a config (same as the constructor; named for readability).
std::unique_ptr<PerceiverIO> create_perceiver_io(const HfPerceiverConfig& config, uint64_t init_seed = 0);

}  // namespace perceiver::models::perceiver_io
