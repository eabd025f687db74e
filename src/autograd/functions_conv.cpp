// Differentiable conv-stem functions and their gradient rules (same style as functions.cpp):
// run the forward op, then, only if a node must be recorded, capture what the backward op needs.
#include "perceiver/autograd/functions_conv.h"

#include "perceiver/autograd/tape.h"
#include "perceiver/ops/batch_norm.h"
#include "perceiver/ops/conv2d.h"
#include "perceiver/ops/layout.h"
#include "perceiver/ops/pooling.h"

namespace perceiver::ag {

using autograd::record;
using autograd::should_record;
using Grads = std::vector<Tensor>;

namespace {
bool needs(const Tensor& t) { return t.defined() && t.requires_grad(); }
}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride_h, int stride_w,
              int pad_h, int pad_w) {
  Tensor y = ops::conv2d(x, w, b, stride_h, stride_w, pad_h, pad_w);
  if (should_record({&x, &w, &b})) {
    // dx = col2im(w^T dy), dw = sum_b dy_b col_b^T, db = sum dy
    const bool nx = needs(x), nw = needs(w), nb = needs(b);
    record("conv2d", {x, w, b}, {&y},
           [x, w, stride_h, stride_w, pad_h, pad_w, nx, nw, nb](const Grads& g) -> Grads {
             ops::Conv2dGrads d =
                 ops::conv2d_backward(g[0], x, w, stride_h, stride_w, pad_h, pad_w, nx, nw, nb);
             return {d.dx, d.dw, d.db};
           });
  }
  return y;
}

Tensor batch_norm(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& running_mean,
                  Tensor& running_var, float eps, float momentum, bool training) {
  if (!training) {
    Tensor y = ops::batch_norm_inference(x, w, b, running_mean, running_var, eps);
    if (should_record({&x, &w, &b})) {
      Tensor rm = running_mean.clone(), rv = running_var.clone();  // stats as used here
      record("batch_norm", {x, w, b}, {&y}, [x, w, rm, rv, eps](const Grads& g) -> Grads {
        ops::BatchNormGrads d = ops::batch_norm_inference_backward(g[0], x, w, rm, rv, eps);
        return {d.dx, d.dw, d.db};
      });
    }
    return y;
  }
  ops::BatchNormTrainOut out = ops::batch_norm_train(x, w, b, eps);
  if (momentum != 0.0f && (running_mean.defined() || running_var.defined()))  // momentum 0: untouched
    ops::batch_norm_update_running_stats(running_mean, running_var, out.mean, out.var_unbiased,
                                         momentum);
  if (should_record({&x, &w, &b})) {
    Tensor mean = out.mean, rstd = out.rstd;
    record("batch_norm", {x, w, b}, {&out.y}, [x, w, mean, rstd](const Grads& g) -> Grads {
      ops::BatchNormGrads d = ops::batch_norm_backward(g[0], x, w, mean, rstd);
      return {d.dx, d.dw, d.db};
    });
  }
  return out.y;
}

Tensor max_pool2d(const Tensor& x, int kh, int kw, int sh, int sw, int ph, int pw) {
  ops::MaxPoolOut out = ops::max_pool2d(x, kh, kw, sh, sw, ph, pw);
  if (should_record({&x})) {
    Tensor indices = out.indices;
    const Shape xs = x.shape();
    record("max_pool2d", {x}, {&out.y}, [indices, xs](const Grads& g) -> Grads {
      return {ops::max_pool2d_backward(g[0], indices, xs)};
    });
  }
  return out.y;
}

Tensor avg_pool2d(const Tensor& x, int kh, int kw, int sh, int sw) {
  Tensor y = ops::avg_pool2d(x, kh, kw, sh, sw);
  if (should_record({&x})) {
    const Shape xs = x.shape();
    // dx = dy / (kh kw) spread over each window
    record("avg_pool2d", {x}, {&y}, [xs, kh, kw, sh, sw](const Grads& g) -> Grads {
      return {ops::avg_pool2d_backward(g[0], xs, kh, kw, sh, sw)};
    });
  }
  return y;
}

Tensor channels_last_tokens(const Tensor& x) {
  Tensor y = ops::channels_last_tokens(x);
  if (should_record({&x})) {
    const Shape xs = x.shape();
    record("channels_last_tokens", {x}, {&y}, [xs](const Grads& g) -> Grads {
      return {ops::channels_last_tokens_backward(g[0], xs)};
    });
  }
  return y;
}

Tensor image_patches(const Tensor& x, int k) {
  Tensor y = ops::image_patches(x, k);
  if (should_record({&x})) {
    const Shape xs = x.shape();
    // dx = each copy's gradient added back to its source pixel
    record("image_patches", {x}, {&y}, [xs, k](const Grads& g) -> Grads {
      return {ops::image_patches_backward(g[0], xs, k)};
    });
  }
  return y;
}

}  // namespace perceiver::ag
