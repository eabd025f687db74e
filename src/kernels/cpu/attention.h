// Multi-head attention kernels (flash-attention style): per (batch, head) GEMMs on strided head
// slices, keys processed in blocks with an online softmax so scratch is rows x key_block, never
// N x M. fp32 with the default key block on AVX-512: narrow heads (Dqk, Dv <= 64) whose N x M
// score tile fits in L2 take a small-head path instead, each (batch, head) item one block of
// keys in transposed-score layout with its products by cpu::small_gemm. Raw pointers, never
// throw; ops/attention.cpp validates.
#pragma once

#include <cstdint>

namespace perceiver::cpu {

struct AttentionShape {
  int64_t batch, n, m, heads, dqk, dv;  // q (B,N,H*Dqk), k (B,M,H*Dqk), v (B,M,H*Dv)
};

// Whether the fp32 kernels with the default key block run this shape on the small-head path
// (the backward always; the forward on one thread, and with more threads whenever its row chunks
// qualify): AVX-512 variant, Dqk and Dv <= 64, at least 16 queries, N x M <= 64 Ki floats.
bool attention_small_heads(const AttentionShape& s);

// Keys per block for a tile of `rows` queries (keeps the rows x block score tile ~256 KiB).
int64_t attention_key_block(int64_t rows);

// out (B,N,H*Dv) = softmax(q k^T * scale + mask) v per head; lse (B,H,N). mask: nullptr or (B,M)
// additive. A query whose scores are all -inf gets out = 0, lse = -inf. key_block <= 0: default.
void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v,
                       const float* mask, float scale, float* out, float* lse,
                       int64_t key_block = 0);

// The same with q, k, v in bfloat16 (uint16_t bits): the score and P V products run as bf16
// GEMMs with fp32 accumulation, the probabilities are rounded to bf16 for P V; max, sum, lse,
// the softmax and the output accumulator stay fp32 (inference, and mixed-precision training).
void attention_forward_bf16(const AttentionShape& s, const uint16_t* q, const uint16_t* k,
                            const uint16_t* v, const float* mask, float scale, float* out,
                            float* lse, int64_t key_block = 0);

// Folds the attention over another block of keys into a running result (log-sum-exp merge):
// with (out, lse) over the keys so far and (out_blk, lse_blk) over the new keys, both for the
// same queries, lse' = log(e^lse + e^lse_blk) and out' = e^{lse-lse'} out + e^{lse_blk-lse'}
// out_blk. Layouts as attention_forward; -inf entries (no keys yet, all masked) merge exactly.
void attention_merge(const AttentionShape& s, float* out, float* lse, const float* out_blk,
                     const float* lse_blk);

// Gradients of the forward above, recomputing P = exp(S*scale + mask - lse) block by block.
void attention_backward(const AttentionShape& s, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse,
                        const float* mask, float scale, float* dq, float* dk, float* dv,
                        int64_t key_block = 0);

// Mixed-precision backward: q, k, v and out as saved in bf16 by the forward; dO, P and dS are
// rounded to bf16 for the four products (dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q), with
// fp32 accumulation; D = rowsum(dO O), P and dS = P (dP - D) are computed in fp32. dq, dk, dv fp32.
void attention_backward_bf16(const AttentionShape& s, const float* dout, const uint16_t* q, const uint16_t* k,
                             const uint16_t* v, const uint16_t* out, const float* lse, const float* mask,
                             float scale, float* dq, float* dk, float* dv, int64_t key_block = 0);

}  // namespace perceiver::cpu
