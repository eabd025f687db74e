// PerceiverLayer forward, line by line after HF PerceiverLayer.forward (spec section 3).
#include "perceiver/nn/perceiver_layer.h"

#include <algorithm>
#include <string>

#include "perceiver/autograd/grad_mode.h"
#include "perceiver/ops/activation.h"
#include "perceiver/ops/linear.h"

#include <cmath>

#include "perceiver/autograd/checkpoint.h"
#include "perceiver/autograd/chunked_kv_attention.h"
#include "perceiver/autograd/functions.h"

namespace perceiver::nn {

PerceiverLayerConfig resolve_layer_config(PerceiverLayerConfig c, bool cross_shape_kv) {
  check(c.q_dim > 0, "[PerceiverLayer] q_dim must be positive, got ", c.q_dim);
  if (!c.is_cross) c.kv_dim = c.q_dim;
  check(c.kv_dim > 0, "[PerceiverLayer] kv_dim must be positive, got ", c.kv_dim);
  check(c.num_heads >= 1, "[PerceiverLayer] num_heads must be >= 1, got ", c.num_heads);
  check(c.widening_factor >= 1, "[PerceiverLayer] widening_factor must be >= 1, got ",
        c.widening_factor);
  check(c.dropout >= 0.0f && c.dropout < 1.0f, "[PerceiverLayer] dropout must be in [0, 1), got ",
        c.dropout);
  check(c.drop_path >= 0.0f && c.drop_path < 1.0f, "[PerceiverLayer] drop_path must be in [0, 1), got ", c.drop_path);
  check(c.drop_path == 0.0f || c.use_query_residual, "[PerceiverLayer] drop_path needs the query residual "
        "(it drops a residual branch)");
  if (c.is_cross && c.qk_channels <= 0) {
    c.qk_channels = cross_shape_kv ? c.kv_dim : c.q_dim;  // cross_attention_shape_for_attention
  } else if (c.qk_channels <= 0) {
    c.qk_channels = c.q_dim;
  }
  if (c.v_channels <= 0) c.v_channels = c.qk_channels;
  check(c.qk_channels % c.num_heads == 0, "[PerceiverLayer] qk_channels (", c.qk_channels,
        ") must be divisible by num_heads (", c.num_heads, ")");
  check(c.v_channels % c.num_heads == 0, "[PerceiverLayer] v_channels (", c.v_channels,
        ") must be divisible by num_heads (", c.num_heads, ")");
  check(c.is_cross || c.v_channels == c.q_dim, "[PerceiverLayer] a self-attention layer needs "
        "v_channels == q_dim for its residual, got v_channels=", c.v_channels, " q_dim=", c.q_dim);
  return c;
}

PerceiverLayer::PerceiverLayer(const PerceiverLayerConfig& config, Rng& rng)
    : config_(resolve_layer_config(config)) {
  const auto& c = config_;
  const int64_t out_dim = c.is_cross ? c.q_dim : c.v_channels;
  layernorm1_ = register_module("attention.self.layernorm1", std::make_shared<LayerNorm>(c.q_dim, c.layer_norm_eps));
  if (c.is_cross)
    layernorm2_ = register_module("attention.self.layernorm2", std::make_shared<LayerNorm>(c.kv_dim, c.layer_norm_eps));
  query_ = register_module("attention.self.query", std::make_shared<Linear>(c.q_dim, c.qk_channels, true, rng, c.init_std));
  key_ = register_module("attention.self.key", std::make_shared<Linear>(c.kv_dim, c.qk_channels, true, rng, c.init_std));
  value_ = register_module("attention.self.value", std::make_shared<Linear>(c.kv_dim, c.v_channels, true, rng, c.init_std));
  out_ = register_module("attention.output.dense", std::make_shared<Linear>(c.v_channels, out_dim, true, rng, c.init_std));
  layernorm_ = register_module("layernorm", std::make_shared<LayerNorm>(out_dim, c.layer_norm_eps));
  dense1_ = register_module("mlp.dense1", std::make_shared<Linear>(out_dim, c.widening_factor * out_dim, true, rng, c.init_std));
  dense2_ = register_module("mlp.dense2", std::make_shared<Linear>(c.widening_factor * out_dim, out_dim, true, rng, c.init_std));
}

namespace {

// A cross layer's inputs: y (B, M, Cy) and y_shared (M, Cs) or undefined, checked against
// (B, M, kv_dim) rows; the full rows [y_bm, y_shared_m] when asked for.
void check_cross_inputs(const Tensor& y, const Tensor& y_shared, int64_t batch, int64_t kv_dim) {
  if (y_shared.defined())
    check(y_shared.rank() == 2 && y.defined() && y.rank() == 3 && y_shared.dim(0) == y.dim(1),
          "[PerceiverLayer] y_shared must be (M, Cs) with y's M, got ", shape_str(y_shared.shape()), " beside y ",
          y.defined() ? shape_str(y.shape()) : "undefined");
  const int64_t cs = y_shared.defined() ? y_shared.dim(1) : 0;
  check(y.defined() && y.rank() == 3 && y.dim(2) + cs == kv_dim && y.dim(0) == batch, "[PerceiverLayer] y must be (",
        batch, ", M, ", kv_dim - cs, ")", cs > 0 ? " beside y_shared's " + std::to_string(cs) + " channels" : "",
        ", got ", y.defined() ? shape_str(y.shape()) : "undefined");
}

}  // namespace

Tensor full_rows(const Tensor& own, const Tensor& shared) {
  return shared.defined() ? ag::concat_last(own, ag::expand_leading(shared, own.dim(0))) : own;
}

ag::KvProjection PerceiverLayer::kv_projection_params() const {
  return {layernorm2_->weight(), layernorm2_->bias(), layernorm2_->eps(), key_->weight(), key_->bias(),
          value_->weight(), value_->bias()};
}

Tensor PerceiverLayer::forward(const Tensor& x, const Tensor& y, const Tensor& key_mask, Rng* rng,
                               const Tensor& y_shared) const {
  if (!activation_checkpointing()) return forward_impl(x, y, key_mask, rng, y_shared);
  // keep x and y (and y_shared) only; backward recomputes this layer (autograd/checkpoint.h)
  std::vector<Tensor> inputs{x, y};
  if (y_shared.defined()) inputs.push_back(y_shared);
  return ag::checkpoint(
      [this, key_mask](const std::vector<Tensor>& in, Rng* r) {
        return forward_impl(in[0], in[1], key_mask, r, in.size() > 2 ? in[2] : Tensor());
      },
      inputs, rng, any_parameter_requires_grad());
}

Tensor PerceiverLayer::forward_impl(const Tensor& x, const Tensor& y, const Tensor& key_mask, Rng* rng,
                                    const Tensor& y_shared) const {
  const auto& c = config_;
  check(x.defined() && x.rank() == 3 && x.dim(2) == c.q_dim, "[PerceiverLayer] x must be (B, N, ",
        c.q_dim, "), got ", x.defined() ? shape_str(x.shape()) : "undefined");
  if (c.is_cross) check_cross_inputs(y, y_shared, x.dim(0), c.kv_dim);
  const bool drop = is_training() && c.dropout > 0.0f;
  const bool drop_path = is_training() && c.drop_path > 0.0f;
  check((!drop && !drop_path) || rng != nullptr, "[PerceiverLayer] dropout or drop_path in training mode needs an Rng");

  // xn = LN1(x); yn = LN2(y) for cross layers, xn for self layers. Mixed-precision training
  // rounds each once to bf16 for the products that share it (not once per product).
  const bool mixed = precision() == Precision::kBF16 && is_training();
  auto shared = [mixed](Tensor t) { return mixed ? ag::to_bf16(t) : t; };
  Tensor xn = shared(layernorm1_->forward(x));
  // Q = Linear_q(xn), K = Linear_k(yn), V = Linear_v(yn)
  Tensor q = query_->forward(xn);
  // context = softmax(Q K^T / sqrt(qk / H) + mask) V, heads = contiguous channel slices
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.qk_channels / c.num_heads));
  Tensor context;
  if (c.is_cross && activation_checkpointing() && (precision() == Precision::kF32 || mixed) &&
      y.dim(1) > c.kv_chunk) {
    // the same, with LN2, K and V formed c.kv_chunk inputs at a time (never for all M inputs);
    // fp32 products, in mixed-precision training too (memory first)
    context = ag::chunked_kv_attention(q, full_rows(y, y_shared), kv_projection_params(), c.num_heads, scale, key_mask,
                                       c.kv_chunk);
  } else {
    Tensor k, v;
    if (c.is_cross && y_shared.defined() && !y_shared.requires_grad() && key_->weight().dtype() == DType::kF32 &&
        y.dim(0) >= 2) {
      // K = Linear_k(LN2([y, y_shared])), V likewise, from y and the shared channels' product
      // (fp32, in mixed-precision training too: it is a small share of the step). Not for one
      // example, where it would save no work and hold the (M, Dk + Dv) product besides.
      ag::KeysValues kv = ag::kv_projection(y, y_shared, kv_projection_params());
      k = kv.k;
      v = kv.v;
    } else {
      Tensor yn = c.is_cross ? shared(layernorm2_->forward(full_rows(y, y_shared))) : xn;
      k = key_->forward(yn);
      v = value_->forward(yn);
    }
    context = ag::attention(q, k, v, c.num_heads, scale, key_mask,
                            attention_precision(precision(), q.dim(1), k.dim(1), c.qk_channels / c.num_heads));
  }
  // a = dense(context) [+ x]   (the residual uses the un-normalised query input)
  Tensor a = out_->forward(context);
  if (drop) a = ag::dropout(a, c.dropout, true, *rng);
  if (drop_path) a = ag::drop_path(a, c.drop_path, true, *rng);  // a[b] * keep_b (stochastic depth)
  if (c.use_query_residual) a = ag::add(a, x);
  // out = a + dense2(GELU(dense1(LN(a))))
  Tensor m = dense2_->forward(ag::gelu(dense1_->forward(layernorm_->forward(a))));
  if (drop) m = ag::dropout(m, c.dropout, true, *rng);
  if (drop_path) m = ag::drop_path(m, c.drop_path, true, *rng);
  return ag::add(a, m);
}

Tensor PerceiverLayer::attention_probs(const Tensor& x, const Tensor& y_own, const Tensor& key_mask,
                                       const Tensor& y_shared) const {
  const auto& c = config_;
  check(x.defined() && x.rank() == 3 && x.dim(2) == c.q_dim, "[PerceiverLayer] x must be (B, N, ", c.q_dim, "), got ",
        x.defined() ? shape_str(x.shape()) : "undefined");
  if (c.is_cross) check_cross_inputs(y_own, y_shared, x.dim(0), c.kv_dim);
  autograd::NoGradGuard no_grad;
  const Tensor y = c.is_cross ? full_rows(y_own, y_shared) : y_own;
  // Q = Linear_q(LN1(x)), K = Linear_k(LN2(y))                              (B, N|M, qk)
  const Tensor xn = layernorm1_->forward(x);
  const Tensor q = query_->forward(xn);
  const Tensor k = key_->forward(c.is_cross ? layernorm2_->forward(y) : xn);
  const int64_t b = q.dim(0), n = q.dim(1), m = k.dim(1), heads = c.num_heads, dh = c.qk_channels / heads;
  check(!key_mask.defined() || key_mask.shape() == Shape({b, m}), "[PerceiverLayer] key_mask must be (", b, ", ", m, ")");
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  // head h's channels [h dh, (h + 1) dh) as a dense (B, rows, dh) tensor
  auto head = [dh](const Tensor& t, int64_t h) {
    const int64_t rows = t.dim(0) * t.dim(1), width = t.dim(2);
    Tensor out = Tensor::empty({t.dim(0), t.dim(1), dh});
    const float* src = t.f32();
    float* dst = out.f32();
    for (int64_t r = 0; r < rows; ++r) std::copy(src + r * width + h * dh, src + r * width + (h + 1) * dh, dst + r * dh);
    return out;
  };
  Tensor probs = Tensor::empty({b, heads, n, m});
  for (int64_t h = 0; h < heads; ++h) {
    // scores = Q_h K_h^T * scale + mask                                         (B, N, M)
    Tensor scores = ops::matmul(head(q, h), head(k, h), false, true);
    float* sc = scores.f32();
    for (int64_t i = 0; i < b; ++i)
      for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < m; ++j) {
          float& v = sc[(i * n + r) * m + j];
          v = v * scale + (key_mask.defined() ? key_mask.f32()[i * m + j] : 0.0f);
        }
    const Tensor p = ops::softmax(scores);  // over the inputs (last axis)
    for (int64_t i = 0; i < b; ++i)
      std::copy(p.f32() + i * n * m, p.f32() + (i + 1) * n * m, probs.f32() + (i * heads + h) * n * m);
  }
  return probs;
}

int64_t PerceiverLayer::activation_floats(int64_t n, int64_t m, int64_t shared_channels) const {
  const auto& c = config_;
  const int64_t out = c.is_cross ? c.q_dim : c.v_channels, wide = c.widening_factor * out;
  const int64_t drop = c.dropout > 0.0f ? 2 * out : 0;  // dropout masks
  // xn, q, context (+ lse), a, a + x, LN(a), dense2, sum; dense1 and GELU of the MLP
  const int64_t per_query = c.q_dim + c.qk_channels + c.v_channels + c.num_heads + 5 * out + 2 * wide + drop;
  // yn, k, v over the inputs (cross layers only); with shared channels k, v and LN's two statistics
  const int64_t per_input =
      c.is_cross ? (shared_channels > 0 ? 2 : c.kv_dim) + c.qk_channels + c.v_channels : 0;
  return n * per_query + m * per_input;
}

}  // namespace perceiver::nn
