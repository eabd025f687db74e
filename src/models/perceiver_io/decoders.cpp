// Decoders, after HF modeling_perceiver PerceiverBasicDecoder, PerceiverClassificationDecoder,
// PerceiverOpticalFlowDecoder and PerceiverMultimodalDecoder (spec 6).
#include "perceiver/models/perceiver_io/decoders.h"

#include "perceiver/autograd/functions.h"
#include "perceiver/models/perceiver_io/tensor_ops.h"

namespace perceiver::models::perceiver_io {

std::vector<int64_t> selected_points(const OutputPoints& points, const std::string& modality, int64_t total,
                                     const char* who) {
  auto it = points.find(modality);
  if (it == points.end()) {
    std::vector<int64_t> all(static_cast<size_t>(total));
    for (int64_t i = 0; i < total; ++i) all[i] = i;
    return all;
  }
  check(!it->second.empty(), "[", who, "] no output points selected", (modality.empty() ? "" : " for " + modality));
  for (int64_t p : it->second)
    check(p >= 0 && p < total, "[", who, "] output point ", p, (modality.empty() ? "" : " of " + modality),
          " is outside [0, ", total, ")");
  return it->second;
}

// ---------------------------------------------------------------------------------------------
// PerceiverBasicDecoder

BasicDecoder::BasicDecoder(const BasicDecoderConfig& config, Rng& rng) : c_(config) {
  const auto& c = c_;
  check(c.position_encoding_type == "trainable" || c.position_encoding_type == "fourier" ||
            c.position_encoding_type == "none",
        "[basic_decoder] position_encoding_type: expected trainable, fourier or none, got ", c.position_encoding_type);
  if (c.position_encoding_type == "trainable")
    trainable_ = register_module("output_position_encodings", std::make_shared<TrainablePositionEncoding>(
                                                                  c.trainable_index_dim, c.trainable_channels, rng));
  if (c.position_encoding_only) return;
  // decoding_cross_attention = PerceiverLayer(is_cross_attention=True, q_dim=num_channels,
  // kv_dim=d_latents, qk_channels, v_channels, num_heads, widening_factor, use_query_residual)
  nn::PerceiverLayerConfig lc;
  lc.is_cross = true;
  lc.q_dim = c.num_channels;
  lc.kv_dim = c.d_latents;
  lc.qk_channels = c.qk_channels;
  lc.v_channels = c.v_channels;
  lc.num_heads = c.num_heads;
  lc.widening_factor = c.widening_factor;
  lc.use_query_residual = c.use_query_residual;
  try {
    lc = nn::resolve_layer_config(lc, c.cross_shape_kv);
  } catch (const Error& e) {
    throw_error("[basic_decoder] decoding_cross_attention: ", e.what());
  }
  cross_ = register_module("decoding_cross_attention", std::make_shared<nn::PerceiverLayer>(lc, rng));
  // final_layer = Linear(num_channels, output_num_channels) if final_project else Identity
  if (c.final_project)
    final_layer_ = register_module("final_layer",
                                   std::make_shared<nn::Linear>(c.num_channels, c.output_num_channels, true, rng));
}

int64_t BasicDecoder::num_query_channels() const {
  check(c_.position_encoding_type != "none",
        "[basic_decoder] the number of query channels is undefined for position_encoding_type none");
  if (c_.position_encoding_only)
    return c_.position_encoding_type == "trainable" ? c_.trainable_channels : c_.fourier.output_size();
  return c_.final_project ? c_.output_num_channels : c_.num_channels;
}

int64_t BasicDecoder::num_outputs(const std::string&, const EncoderState&) const {
  return shape_numel(c_.output_index_dims);
}

Tensor BasicDecoder::position_queries(int64_t batch, const std::vector<int64_t>& points) const {
  check(c_.position_encoding_type != "none", "[basic_decoder] a decoder without position encoding builds no "
        "queries of its own");
  if (trainable_) {
    // pos_emb = self.output_position_encodings(batch_size): the table broadcast to the batch
    bool whole = static_cast<int64_t>(points.size()) == trainable_->size();
    for (size_t i = 0; whole && i < points.size(); ++i) whole = points[i] == static_cast<int64_t>(i);
    return whole ? trainable_->forward(batch) : trainable_->rows(batch, points);  // (B, O, C)
  }
  // Fourier features of the subsampled points -1 + 2 * coord / output_index_dims
  return ag::expand_leading(c_.fourier.at_points(points, c_.output_index_dims), batch);
}

Tensor BasicDecoder::query(const EncoderState& state, const OutputPoints& points) const {
  return position_queries(state.batch(), selected_points(points, "", num_outputs("", state), "basic_decoder"));
}

Tensor BasicDecoder::decode(const Tensor& query, const Tensor& latents) const {
  check(cross_ != nullptr, "[basic_decoder] a position-encoding-only decoder cannot decode");
  check(query.rank() == 3 && query.dim(2) == c_.num_channels, "[basic_decoder] query: expected (B, O, ",
        c_.num_channels, "), got ", shape_str(query.shape()));
  // output = decoding_cross_attention(query, inputs=z) (no mask); logits = final_layer(output)
  Tensor out = cross_->forward(query, latents, Tensor(), nullptr);  // (B, O, Cq)
  return final_layer_ ? final_layer_->forward(out) : out;          // (B, O, C)
}

Tensor BasicDecoder::forward(const Tensor& query, const Tensor& latents, const OutputPoints&,
                             const EncoderState&) const {
  return decode(query, latents);
}

// ---------------------------------------------------------------------------------------------
// PerceiverClassificationDecoder

ClassificationDecoder::ClassificationDecoder(BasicDecoderConfig config, Rng& rng) {
  config.output_index_dims = {1};
  decoder_ = register_module("decoder", std::make_shared<BasicDecoder>(config, rng));
}

Tensor ClassificationDecoder::query(const EncoderState& state, const OutputPoints& points) const {
  return decoder_->position_queries(state.batch(), selected_points(points, "", 1, "classification_decoder"));
}

Tensor ClassificationDecoder::forward(const Tensor& query, const Tensor& latents, const OutputPoints&,
                                      const EncoderState&) const {
  // logits = self.decoder(query, z).logits[:, 0, :]                               (B, K)
  Tensor out = decoder_->decode(query, latents);  // (B, 1, K)
  return ag::reshape(out.dim(1) == 1 ? out : ag::slice_tokens(out, 0, 1), {out.dim(0), out.dim(2)});
}

// ---------------------------------------------------------------------------------------------
// PerceiverOpticalFlowDecoder

OpticalFlowDecoder::OpticalFlowDecoder(BasicDecoderConfig config, std::vector<int64_t> output_image_shape,
                                       float rescale_factor, Rng& rng)
    : output_image_shape_(std::move(output_image_shape)), rescale_factor_(rescale_factor) {
  decoder_ = register_module("decoder", std::make_shared<BasicDecoder>(config, rng));
}

int64_t OpticalFlowDecoder::num_outputs(const std::string&, const EncoderState& state) const {
  return state.input.inputs.dim(1);
}

Tensor OpticalFlowDecoder::query(const EncoderState& state, const OutputPoints& points) const {
  // decoder_query returns the preprocessed inputs themselves                      (B, M, C)
  const Preprocessed& in = state.input;
  if (points.find("") == points.end()) return in.full_inputs();
  // the selected rows: each example's own channels, then the shared ones         (B, n, C)
  const int64_t m = in.inputs.dim(1);
  const std::vector<int64_t> idx = selected_points(points, "", m, "optical_flow_decoder");
  Tensor own = ag::gather_tokens(in.inputs, idx);
  if (!in.shared.defined()) return own;
  Tensor shared = ag::gather_tokens(ag::reshape(in.shared, {1, m, in.shared.dim(1)}), idx);
  shared = ag::expand_leading(ag::reshape(shared, {shared.dim(1), shared.dim(2)}), own.dim(0));
  return ag::concat_last(own, shared);
}

Tensor OpticalFlowDecoder::to_image(const Tensor& flat) const {
  const int64_t h = output_image_shape_[0], w = output_image_shape_[1];
  check(flat.dim(1) == h * w, "[optical_flow_decoder] the flow output is reshaped to train_size ", h, "x", w,
        " = ", h * w, " pixels, but the input frames give ", flat.dim(1),
        " pixels; the frames must be exactly train_size");
  return ag::reshape(flat, {flat.dim(0), h, w, flat.dim(2)});
}

Tensor OpticalFlowDecoder::forward(const Tensor& query, const Tensor& latents, const OutputPoints& points,
                                   const EncoderState&) const {
  // preds = self.decoder(query, z).logits / rescale_factor, reshaped to [B, H, W, C]
  Tensor preds = divide(decoder_->decode(query, latents), rescale_factor_);
  return points.find("") == points.end() ? to_image(preds) : preds;
}

// ---------------------------------------------------------------------------------------------
// PerceiverMultimodalDecoder

MultimodalDecoder::MultimodalDecoder(
    std::map<std::string, std::pair<std::string, std::shared_ptr<BasicDecoder>>> builders,
    BasicDecoderConfig shared, int64_t min_padding_size, Rng& rng)
    : min_padding_size_(min_padding_size) {
  check(!builders.empty(), "[multimodal_decoder] needs at least one modality");
  for (auto& [m, named] : builders) {
    register_module(named.first, named.second);
    builders_[m] = named.second;
  }
  // decoder = PerceiverBasicDecoder(position_encoding_type="none", num_channels=num_query_channels)
  const int64_t cq = num_query_channels();
  shared.num_channels = cq;
  shared.position_encoding_type = "none";
  decoder_ = register_module("decoder", std::make_shared<BasicDecoder>(shared, rng));
  // padding.<m> (1, Cq - Cq_m)
  for (const auto& [m, b] : builders_)
    padding_[m] = register_parameter("padding." + m,
                                     nn::init_truncated_normal({1, cq - b->num_query_channels()}, 0.02f, rng));
}

int64_t MultimodalDecoder::num_query_channels() const {
  int64_t widest = 0;
  for (const auto& [m, b] : builders_) widest = std::max(widest, b->num_query_channels());
  return widest + min_padding_size_;
}

std::vector<std::string> MultimodalDecoder::output_modalities() const {
  std::vector<std::string> out;
  for (const auto& [m, b] : builders_) out.push_back(m);
  return out;
}

int64_t MultimodalDecoder::num_outputs(const std::string& modality, const EncoderState& state) const {
  auto it = builders_.find(modality);
  check(it != builders_.end(), "[multimodal_decoder] unknown output modality '", modality, "'");
  return it->second->num_outputs("", state);
}

Tensor MultimodalDecoder::query(const EncoderState& state, const OutputPoints& points) const {
  for (const auto& [m, p] : points)
    check(builders_.count(m), "[multimodal_decoder] output points given for unknown modality '", m, "'");
  const int64_t batch = state.batch(), cq = num_query_channels();
  std::vector<Tensor> parts;
  for (const auto& [m, builder] : builders_) {  // alphabetical, as sorted(self.modalities.keys())
    auto it = points.find(m);
    if (it != points.end() && it->second.empty()) continue;
    // query = decoder.decoder_query(subsampled_points=points[m]); embed(): pad with padding[m]
    Tensor q = builder->position_queries(batch, selected_points(points, m, num_outputs(m, state), "multimodal_decoder"));
    if (q.dim(2) < cq) q = ag::concat_last(q, broadcast_row(padding_.at(m), batch, q.dim(1)));
    parts.push_back(q);  // (B, O_m, Cq)
  }
  check(!parts.empty(), "[multimodal_decoder] no output points selected");
  return ag::concat_tokens(parts);  // (B, O, Cq)
}

Tensor MultimodalDecoder::forward(const Tensor& query, const Tensor& latents, const OutputPoints&,
                                  const EncoderState&) const {
  return decoder_->decode(query, latents);  // (B, O, output_num_channels)
}

}  // namespace perceiver::models::perceiver_io
