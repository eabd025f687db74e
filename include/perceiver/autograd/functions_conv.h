// Differentiable convolutional-stem functions (namespace ag): conv2d, batch_norm, max_pool2d and
// the NCHW -> token flattening that HF's image preprocessor applies. Each calls the forward op
// and, when grad mode is on and an input requires grad, records a node whose backward calls the
// matching *_backward op. Gradient rules live in src/autograd/functions_conv.cpp.
#pragma once

#include "perceiver/core/tensor.h"

namespace perceiver::ag {

// torch.nn.functional.conv2d(x, w, b, stride, padding), groups 1: x (B, Cin, H, W),
// w (Cout, Cin, kh, kw), b (Cout) or undefined -> (B, Cout, OH, OW).
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride_h, int stride_w,
              int pad_h, int pad_w);

// torch.nn.functional.batch_norm(x, running_mean, running_var, w, b, training, momentum, eps)
// over x (B, C, ...); w, b (C) or undefined.
// training: normalises with the batch mean and biased variance and, when the running stats are
//   defined, updates them in place (no gradient): running = (1 - momentum) * running +
//   momentum * batch, with the unbiased batch variance for running_var (momentum 0: untouched).
// eval: normalises with running_mean / running_var (both required), which stay unchanged.
// (The caller owns num_batches_tracked.)
Tensor batch_norm(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& running_mean,
                  Tensor& running_var, float eps, float momentum, bool training);

// torch.nn.functional.max_pool2d(x, (kh, kw), (sh, sw), (ph, pw)): gradient flows to the argmax.
Tensor max_pool2d(const Tensor& x, int kh, int kw, int sh, int sw, int ph, int pw);

// torch.nn.functional.avg_pool2d(x, (kh, kw), (sh, sw)) without padding.
Tensor avg_pool2d(const Tensor& x, int kh, int kw, int sh, int sw);

// (B, C, *spatial) -> (B, N, C): x.permute(0, 2, 3, 1).reshape(B, -1, C).
Tensor channels_last_tokens(const Tensor& x);

// (B, H, W, C) -> (B, H, W, k*k*C): each pixel's k x k neighbourhood, zero padded (ops::image_patches).
Tensor image_patches(const Tensor& x, int k);

}  // namespace perceiver::ag
