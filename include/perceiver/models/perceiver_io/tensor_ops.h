// Helpers the Perceiver IO models need beyond the shared ag:: set (which has the token-axis
// concat / slice / gather): row lookups, broadcasting a learned row to every token, float32
// division, and the (non-differentiable) layout moves of raw model inputs.
// Differentiable helpers record their own gradient rule on the tape (autograd/tape.h).
#pragma once

#include <cstdint>
#include <vector>

#include "perceiver/core/tensor.h"

namespace perceiver::models::perceiver_io {

// Rows idx of a table: (T, C) -> (n, C) (a differentiable lookup).
Tensor gather_rows(const Tensor& table, const std::vector<int64_t>& idx);
// A learned row (1, C) or (C) repeated for every token: -> (B, T, C).
Tensor broadcast_row(const Tensor& row, int64_t batch, int64_t tokens);
// x / d with a float32 division per element (torch `preds /= d`), d != 0.
Tensor divide(const Tensor& x, float d);
// Channels-first feature maps to tokens: (B, C, H, W) -> (B, H*W, C), row-major over (H, W).
Tensor nchw_to_tokens(const Tensor& x);
// Stacks same-shape tensors along a new leading axis (no autograd): k x (...) -> (k, ...).
Tensor stack(const std::vector<Tensor>& xs);

// Raw inputs (no autograd). Integer tensors become float32.
Tensor to_float(const Tensor& x);
// (B, C, H, W) -> (B, H, W, C) and (B, T, C, H, W) -> (B, T, H, W, C).
Tensor channels_last(const Tensor& x);
// HF space_to_depth: (B, C, H, W) -> (B, H/s, W/s, s*s*C) with channel (dy*s + dx)*C + c;
// (B, T, C, H, W) -> (B, T/t, H/s, W/s, t*s*s*C) with channel ((dt*s + dy)*s + dx)*C + c.
Tensor space_to_depth(const Tensor& x, int64_t temporal_block, int64_t spatial_block);

}  // namespace perceiver::models::perceiver_io
