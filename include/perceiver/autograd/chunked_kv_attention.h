// Cross-attention whose keys and values are projected from a long input chunk by chunk (the
// Perceiver encoder with M >> N inputs): never holds LN(y), K or V for all M inputs, in the
// forward pass or in backward, which recomputes them one chunk at a time. Memory is
// O(B N H Dv + chunk (C + Dqk + Dv)) instead of O(B M (C + Dqk + Dv)); the result equals
// attention(q, Wk LN(y) + bk, Wv LN(y) + bv) to float rounding.
#pragma once

#include "perceiver/autograd/functions.h"  // KvProjection
#include "perceiver/core/tensor.h"

namespace perceiver::ag {

// q (B, N, H*Dqk), y (B, M, C), key_mask undefined or (B, M) additive -> context (B, N, H*Dv).
// Chunks of `chunk` inputs per sample. Gradients flow to q, y and every tensor of p.
Tensor chunked_kv_attention(const Tensor& q, const Tensor& y, const KvProjection& p, int heads,
                            float scale, const Tensor& key_mask, int64_t chunk);

}  // namespace perceiver::ag
