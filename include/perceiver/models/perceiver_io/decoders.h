// Decoders of HF modeling_perceiver (spec 6): a query array (B, O, Cq) cross-attends to the
// encoder latents (B, N, D). Every decoder can decode any subset of its output positions (the
// result equals the matching rows of the full decoding: queries never interact), which is what
// subsampled and chunked decoding build on. Parameter names are the HF ones below
// "perceiver.decoder.".
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "perceiver/models/perceiver_io/position_encoding.h"
#include "perceiver/models/perceiver_io/preprocessors.h"
#include "perceiver/nn/perceiver_layer.h"

namespace perceiver::models::perceiver_io {

// Output positions to decode, per output modality ("" for single-output decoders). A modality
// that is absent decodes all of its positions in order; one mapped to an empty list decodes none.
using OutputPoints = std::map<std::string, std::vector<int64_t>>;

// What the encoder produced, as decoders see it.
struct EncoderState {
  Preprocessed input;            // the preprocessed encoder input (full rows: input.full_inputs())
  Tensor latents;                // (B, N, D) encoder output
  int64_t batch() const { return latents.dim(0); }
};

// The positions of `modality` selected by `points` (all of [0, total) when absent); checks range.
std::vector<int64_t> selected_points(const OutputPoints& points, const std::string& modality, int64_t total,
                                     const char* who);

class Decoder : public nn::Module {
 public:
  // Output modalities in HF order (alphabetical); {""} for single-output decoders.
  virtual std::vector<std::string> output_modalities() const { return {""}; }
  // Output positions of a modality.
  virtual int64_t num_outputs(const std::string& modality, const EncoderState& state) const = 0;
  // The decoder query (B, O_sel, Cq) for the selected points (HF decoder_query).
  virtual Tensor query(const EncoderState& state, const OutputPoints& points) const = 0;
  // The decoder module's output for that query (HF decoder forward), e.g. (B, O_sel, C).
  virtual Tensor forward(const Tensor& query, const Tensor& latents, const OutputPoints& points,
                         const EncoderState& state) const = 0;
};

struct BasicDecoderConfig {
  int64_t output_num_channels = 0;
  std::string position_encoding_type = "trainable";  // trainable | fourier | none
  std::vector<int64_t> output_index_dims;           // the output grid (queries)
  int64_t num_channels = 128;                        // query width (q_dim)
  int64_t qk_channels = 0, v_channels = 0;           // 0 = unset (HF rules)
  int num_heads = 1;
  int widening_factor = 1;
  bool use_query_residual = false;
  bool final_project = true;
  bool position_encoding_only = false;  // only builds queries (multimodal sub-decoders)
  int64_t trainable_index_dim = 1;      // trainable_position_encoding_kwargs index_dims
  int64_t trainable_channels = 128;     // trainable_position_encoding_kwargs num_channels
  FourierSpec fourier;
  int64_t d_latents = 0;                // kv width of the cross-attention
  bool cross_shape_kv = true;           // config.cross_attention_shape_for_attention == "kv"
};

// PerceiverBasicDecoder: "output_position_encodings", "decoding_cross_attention", "final_layer".
class BasicDecoder : public Decoder {
 public:
  BasicDecoder(const BasicDecoderConfig& config, Rng& rng);
  int64_t num_outputs(const std::string& modality, const EncoderState& state) const override;
  Tensor query(const EncoderState& state, const OutputPoints& points) const override;
  Tensor forward(const Tensor& query, const Tensor& latents, const OutputPoints& points,
                 const EncoderState& state) const override;

  // HF num_query_channels.
  int64_t num_query_channels() const;
  // Position queries (B, n, Cq) for points into output_index_dims (trainable: table rows;
  // Fourier: features at -1 + 2*coord/size).
  Tensor position_queries(int64_t batch, const std::vector<int64_t>& points) const;
  // final_layer(decoding_cross_attention(query, latents)), no mask.
  Tensor decode(const Tensor& query, const Tensor& latents) const;
  const BasicDecoderConfig& config() const { return c_; }

 private:
  BasicDecoderConfig c_;
  std::shared_ptr<TrainablePositionEncoding> trainable_;
  std::shared_ptr<nn::PerceiverLayer> cross_;
  std::shared_ptr<nn::Linear> final_layer_;
};

// PerceiverClassificationDecoder: a basic decoder under "decoder" with one query; logits are
// token 0 of its output: (B, num_labels).
class ClassificationDecoder : public Decoder {
 public:
  ClassificationDecoder(BasicDecoderConfig config, Rng& rng);
  int64_t num_outputs(const std::string& modality, const EncoderState& state) const override { return 1; }
  Tensor query(const EncoderState& state, const OutputPoints& points) const override;
  Tensor forward(const Tensor& query, const Tensor& latents, const OutputPoints& points,
                 const EncoderState& state) const override;
  BasicDecoder& basic() const { return *decoder_; }

 private:
  std::shared_ptr<BasicDecoder> decoder_;
};

// PerceiverOpticalFlowDecoder: the query is the encoder input itself (one query per pixel); the
// output is divided by rescale_factor and, when every pixel is decoded, reshaped to
// (B, H, W, C) with (H, W) = output_image_shape; a subset gives (B, n, C).
class OpticalFlowDecoder : public Decoder {
 public:
  OpticalFlowDecoder(BasicDecoderConfig config, std::vector<int64_t> output_image_shape, float rescale_factor,
                     Rng& rng);
  int64_t num_outputs(const std::string& modality, const EncoderState& state) const override;
  Tensor query(const EncoderState& state, const OutputPoints& points) const override;
  Tensor forward(const Tensor& query, const Tensor& latents, const OutputPoints& points,
                 const EncoderState& state) const override;
  // (B, H*W, C) -> (B, H, W, C)
  Tensor to_image(const Tensor& flat) const;

 private:
  std::shared_ptr<BasicDecoder> decoder_;
  std::vector<int64_t> output_image_shape_;
  float rescale_factor_;
};

// PerceiverMultimodalDecoder: per-modality query builders "modalities.<m>" (position encodings
// only), padded to a common width with "padding.<m>" and concatenated in alphabetical order, then
// one shared basic decoder "decoder" (no position encoding of its own).
class MultimodalDecoder : public Decoder {
 public:
  // builders: modality -> (registered name below "modalities.<m>", the query-building decoder).
  MultimodalDecoder(std::map<std::string, std::pair<std::string, std::shared_ptr<BasicDecoder>>> builders,
                    BasicDecoderConfig shared, int64_t min_padding_size, Rng& rng);
  std::vector<std::string> output_modalities() const override;
  int64_t num_outputs(const std::string& modality, const EncoderState& state) const override;
  Tensor query(const EncoderState& state, const OutputPoints& points) const override;
  Tensor forward(const Tensor& query, const Tensor& latents, const OutputPoints& points,
                 const EncoderState& state) const override;
  int64_t num_query_channels() const;

 private:
  std::map<std::string, std::shared_ptr<BasicDecoder>> builders_;
  std::map<std::string, Tensor> padding_;
  int64_t min_padding_size_;
  std::shared_ptr<BasicDecoder> decoder_;
};

}  // namespace perceiver::models::perceiver_io
