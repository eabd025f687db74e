// Multi-head scaled dot-product attention for cross- and self-attention (Perceiver encoder,
// latent blocks, decoder). Heads are contiguous channel slices: head h of q/k uses channels
// [h*Dqk, (h+1)*Dqk) and of v [h*Dv, (h+1)*Dv) (HF PerceiverSelfAttention head split).
#pragma once

#include "perceiver/core/precision.h"
#include "perceiver/core/tensor.h"

namespace perceiver::ops {

struct AttentionOut {
  Tensor out;  // (B, N, H*Dv)  softmax(q k^T * scale + mask) v
  Tensor lse;  // (B, H, N)     log-sum-exp of each query's masked, scaled scores (for backward)
};

// q (B, N, H*Dqk), k (B, M, H*Dqk), v (B, M, H*Dv), key_mask undefined or (B, M) additive bias
// added to every score against key m (0 keeps it, a large negative value drops it).
// scale is usually 1/sqrt(Dqk). precision kBF16 (q, k, v float32 or already bfloat16): q, k, v and the probabilities are
// rounded to bf16 for the two products, accumulation and softmax stay fp32 (see
// core/precision.h); the lse is still returned.
AttentionOut attention(const Tensor& q, const Tensor& k, const Tensor& v, int heads, float scale,
                       const Tensor& key_mask, Precision precision = Precision::kF32);

// Folds an attention result over further keys into `acc` in place (log-sum-exp merge, see
// cpu::attention_merge): afterwards acc is the attention over both key sets. acc.out, blk.out
// (B, N, H*Dv); acc.lse, blk.lse (B, H, N). Start acc with out = 0 and lse = -inf.
void attention_merge(AttentionOut& acc, const AttentionOut& blk, int heads);

struct AttentionGrads {
  Tensor dq, dk, dv;
};
// Recomputes the probabilities from q, k and the saved lse (no B x H x N x M tensor is kept).
// Mixed precision: q, k, v and out in bfloat16 (as the bf16 forward used them): the four
// products run in bf16 with fp32 accumulation (cpu::attention_backward_bf16); dq, dk, dv fp32.
AttentionGrads attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                  const Tensor& v, const Tensor& out, const Tensor& lse,
                                  int heads, float scale, const Tensor& key_mask);

}  // namespace perceiver::ops
