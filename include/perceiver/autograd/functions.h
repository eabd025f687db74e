// Differentiable functions (namespace ag): each calls the forward op and, when grad mode is on
// and an input requires grad, records a node whose backward calls the matching *_backward op.
// The gradient rules all live in src/autograd/functions.cpp.
#pragma once

#include "perceiver/core/precision.h"
#include "perceiver/core/random.h"
#include "perceiver/core/tensor.h"

#include <vector>

namespace perceiver::ag {

// x w^T + b. A bfloat16 w (inference, see core/precision.h) is rejected when gradients are on.
// Precision::kBF16 with a float32 w is mixed-precision training: x and w are rounded to bf16 for
// the product (fp32 accumulation), the node keeps those bf16 copies (half the memory of fp32 x)
// and its backward runs bf16 products too; the gradient of w is fp32, for the fp32 master.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b, Precision precision = Precision::kF32);
Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps);

// A cross-attention's input LayerNorm and key and value projections (HF PerceiverSelfAttention
// layernorm2, key, value).
struct KvProjection {
  Tensor ln_weight, ln_bias;  // (C)      LayerNorm on the inputs (attention.self.layernorm2)
  float ln_eps = 1e-5f;
  Tensor wk, bk;              // (H*Dqk, C), (H*Dqk)   attention.self.key
  Tensor wv, bv;              // (H*Dv, C), (H*Dv)     attention.self.value
};
struct KeysValues {
  Tensor k, v;
};
// K, V of inputs [x_bm, s_m] (ops/kv_projection.h): x (B, M, Cx) each example's own channels, s
// (M, Cs) channels every example shares, which must not require gradients (position features).
// Gradients flow to x and every tensor of p. float32 weights.
KeysValues kv_projection(const Tensor& x, const Tensor& s, const KvProjection& p);
// x rounded to bfloat16, for several mixed-precision products that read the same activation
// (one copy instead of one per product); the gradient passes through unchanged, in fp32.
Tensor to_bf16(const Tensor& x);
Tensor gelu(const Tensor& x);                                        // exact erf GELU
Tensor relu(const Tensor& x);
Tensor add(const Tensor& a, const Tensor& b);   // b broadcast over a's leading dims
Tensor mul(const Tensor& a, const Tensor& b);   // same shapes
Tensor scale(const Tensor& x, float s);
Tensor log(const Tensor& x, float eps);        // log(x + eps)
Tensor concat_last(const Tensor& a, const Tensor& b);
Tensor expand_leading(const Tensor& x, int64_t n);   // (...) -> (n, ...)
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor mean(const Tensor& x, int axis);
Tensor center(const Tensor& x, int axis);   // x - mean(x, axis), shape kept
Tensor standardize(const Tensor& x, int axis, float eps);   // (x - mean) / sqrt(var + eps) along axis
Tensor embedding(const Tensor& indices, const Tensor& table);
// Batched matmul (ops::matmul): a (B, P, Q) or (P, Q), b likewise, op() transposes the last two
// dims; the gradient of an operand shared across the batch (rank 2) sums over the batch.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
Tensor softmax(const Tensor& x);  // over the last dim
// BoTNet's 2-D relative position logits from the per-offset logits (ops/relative_logits.h).
Tensor relative_logits(const Tensor& rw, const Tensor& rh, int64_t height, int64_t width);
// Multi-head attention (see ops/attention.h); key_mask is an additive constant (no gradient).
// Precision::kBF16 runs both products in bf16; with gradients on (mixed-precision training) the
// node keeps q, k, v and the output in bf16 and its backward runs bf16 products too.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int heads, float scale,
                 const Tensor& key_mask, Precision precision = Precision::kF32);
// Token axis (axis 1) of (B, T, ...) arrays, see ops/tokens.h.
Tensor concat_tokens(const std::vector<Tensor>& xs);
Tensor slice_tokens(const Tensor& x, int64_t start, int64_t len);
Tensor gather_tokens(const Tensor& x, const std::vector<int64_t>& idx);  // backward scatter-adds
// Inverted dropout; identity when !training or p == 0.
Tensor dropout(const Tensor& x, float p, bool training, Rng& rng);
// Drop path (stochastic depth): each example x[b] kept and scaled by 1 / (1 - p), or zeroed, with
// probability p; identity when !training or p == 0.
Tensor drop_path(const Tensor& x, float p, bool training, Rng& rng);
// Scalar losses ('mean' reduction).
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, float smoothing);
Tensor mse(const Tensor& pred, const Tensor& target);
Tensor end_point_error(const Tensor& pred, const Tensor& target);  // flow (..., 2); unknown targets skipped

}  // namespace perceiver::ag
