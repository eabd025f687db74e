// Differentiable functions and their gradient rules (MLX primitives.cpp vjp style): each
// function runs the forward op, then, only if a node must be recorded, captures what the
// backward op needs. Rules return one gradient per recorded input (undefined = not needed).
#include "perceiver/autograd/functions.h"

#include "perceiver/autograd/grad_mode.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/ops/activation.h"
#include "perceiver/ops/attention.h"
#include "perceiver/ops/convert.h"
#include "perceiver/ops/dropout.h"
#include "perceiver/ops/elementwise.h"
#include "perceiver/ops/embedding.h"
#include "perceiver/ops/kv_projection.h"
#include "perceiver/ops/layer_norm.h"
#include "perceiver/ops/linear.h"
#include "perceiver/ops/loss.h"
#include "perceiver/ops/reduce.h"
#include "perceiver/ops/relative_logits.h"
#include "perceiver/ops/tokens.h"

namespace perceiver::ag {

using autograd::record;
using autograd::should_record;
using Grads = std::vector<Tensor>;

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b, Precision precision) {
  const bool grad = should_record({&x, &w, &b});
  check(!grad || !w.defined() || w.dtype() == DType::kF32,
        "[linear] bf16 weights are inference-only: run without gradients (NoGradGuard) or set "
        "the precision to f32");
  // mixed precision (fp32 w, bf16 precision): the product of bf16(x) and bf16(w), whose copies are
  // also what backward reads (bf16(w) is remembered beside w until w changes); otherwise x and w
  // as given
  const bool mixed = precision == Precision::kBF16 && w.defined() && w.dtype() == DType::kF32;
  const Tensor xs = mixed && x.dtype() != DType::kBF16 ? ops::to_bf16(x) : x;
  const Tensor ws = mixed ? ops::bf16_copy_of(w) : w;  // rounded once per update of w
  Tensor y = ops::linear(xs, ws, b);
  if (grad) {
    // dx = dy w, dw = dy^T x, db = sum dy
    const bool nx = x.requires_grad(), nw = w.requires_grad(), nb = b.defined() && b.requires_grad();
    record("linear", {x, w, b}, {&y}, [xs, ws, nx, nw, nb](const Grads& g) -> Grads {
      ops::LinearGrads d = ops::linear_backward(g[0], xs, ws, nx, nw, nb);
      return {d.dx, d.dw, d.db};
    });
  }
  return y;
}

Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps) {
  ops::LayerNormOut out = ops::layer_norm(x, w, b, eps);
  if (should_record({&x, &w, &b})) {
    Tensor mean = out.mean, rstd = out.rstd;
    record("layer_norm", {x, w, b}, {&out.y}, [x, w, mean, rstd](const Grads& g) -> Grads {
      ops::LayerNormGrads d = ops::layer_norm_backward(g[0], x, w, mean, rstd);
      return {d.dx, d.dw, d.db};
    });
  }
  return out.y;
}

KeysValues kv_projection(const Tensor& x, const Tensor& s, const KvProjection& p) {
  check(!s.requires_grad() || !autograd::grad_enabled(), "[kv_projection] gradients with respect to the shared channels s "
        "are not supported (they are fixed position features)");
  ops::KvProjectionOut out = ops::kv_projection(x, s, p.ln_weight, p.ln_bias, p.ln_eps, p.wk, p.bk, p.wv, p.bv);
  if (should_record({&x, &p.ln_weight, &p.ln_bias, &p.wk, &p.bk, &p.wv, &p.bv})) {
    const Tensor mean = out.mean, rstd = out.rstd;
    const bool nx = x.requires_grad();
    record("kv_projection", {x, p.ln_weight, p.ln_bias, p.wk, p.bk, p.wv, p.bv}, {&out.k, &out.v},
           [x, s, p, mean, rstd, nx](const Grads& g) -> Grads {
             ops::KvProjectionGrads d = ops::kv_projection_backward(g[0], g[1], x, s, p.ln_weight, p.ln_bias, p.wk,
                                                                    p.wv, mean, rstd, nx);
             return {d.dx, d.dln_w, d.dln_b, d.dwk, d.dbk, d.dwv, d.dbv};
           });
  }
  return {out.k, out.v};
}

Tensor to_bf16(const Tensor& x) {
  Tensor y = ops::to_bf16(x);
  // d x = dy (the rounding's straight-through gradient; dy is fp32)
  if (should_record({&x})) record("to_bf16", {x}, {&y}, [](const Grads& g) -> Grads { return {g[0]}; });
  return y;
}

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  Tensor c = ops::matmul(a, b, trans_a, trans_b);
  if (should_record({&a, &b})) {
    const bool na = a.requires_grad(), nb = b.requires_grad();
    record("matmul", {a, b}, {&c}, [a, b, trans_a, trans_b, na, nb](const Grads& g) -> Grads {
      // C = op(A) op(B): d op(A) = dC op(B)^T, d op(B) = op(A)^T dC; an operand shared by the
      // batch (rank 2 beside a rank-3 other) gets the sum over the batch
      Tensor da, db;
      if (na) {
        da = trans_a ? ops::matmul(b, g[0], trans_b, true) : ops::matmul(g[0], b, false, !trans_b);
        if (da.rank() > a.rank()) da = ops::sum_to(da, a.shape());
      }
      if (nb) {
        db = trans_b ? ops::matmul(g[0], a, true, trans_a) : ops::matmul(a, g[0], !trans_a, false);
        if (db.rank() > b.rank()) db = ops::sum_to(db, b.shape());
      }
      return {da, db};
    });
  }
  return c;
}

Tensor softmax(const Tensor& x) {
  Tensor y = ops::softmax(x);
  // dx = y * (dy - sum(dy * y))
  if (should_record({&x}))
    record("softmax", {x}, {&y}, [y](const Grads& g) -> Grads { return {ops::softmax_backward(g[0], y)}; });
  return y;
}

Tensor relative_logits(const Tensor& rw, const Tensor& rh, int64_t height, int64_t width) {
  Tensor y = ops::relative_logits(rw, rh, height, width);
  // drw, drh = dy summed over the keys that read each offset
  if (should_record({&rw, &rh}))
    record("relative_logits", {rw, rh}, {&y}, [height, width](const Grads& g) -> Grads {
      ops::RelativeLogitsGrads d = ops::relative_logits_backward(g[0], height, width);
      return {d.drw, d.drh};
    });
  return y;
}

Tensor gelu(const Tensor& x) {
  if (!should_record({&x})) return ops::gelu(x);
  // the forward also writes dy/dx, which backward multiplies by (Phi is not evaluated twice)
  ops::GeluOut out = ops::gelu_with_grad(x);
  const Tensor d = out.grad;
  record("gelu", {x}, {&out.y}, [d](const Grads& g) -> Grads { return {ops::mul(g[0], d)}; });
  return out.y;
}

Tensor relu(const Tensor& x) {
  Tensor y = ops::relu(x);
  if (should_record({&x}))
    record("relu", {x}, {&y}, [x](const Grads& g) -> Grads { return {ops::relu_backward(g[0], x)}; });
  return y;
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = ops::add(a, b);
  if (should_record({&a, &b})) {
    // d a = dy; d b = dy summed over the broadcast leading dims.
    const Shape bshape = b.shape();
    record("add", {a, b}, {&y}, [bshape](const Grads& g) -> Grads {
      return {g[0], ops::sum_to(g[0], bshape)};
    });
  }
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = ops::mul(a, b);
  if (should_record({&a, &b})) {
    const bool na = a.requires_grad(), nb = b.requires_grad();
    record("mul", {a, b}, {&y}, [a, b, na, nb](const Grads& g) -> Grads {
      return {na ? ops::mul(g[0], b) : Tensor(), nb ? ops::mul(g[0], a) : Tensor()};
    });
  }
  return y;
}

Tensor scale(const Tensor& x, float s) {
  Tensor y = ops::scale(x, s);
  if (should_record({&x}))
    record("scale", {x}, {&y}, [s](const Grads& g) -> Grads { return {ops::scale(g[0], s)}; });
  return y;
}

Tensor log(const Tensor& x, float eps) {
  Tensor y = ops::log(x, eps);
  if (should_record({&x}))
    record("log", {x}, {&y}, [x, eps](const Grads& g) -> Grads { return {ops::log_backward(g[0], x, eps)}; });
  return y;
}

Tensor concat_last(const Tensor& a, const Tensor& b) {
  Tensor y = ops::concat_last(a, b);
  if (should_record({&a, &b})) {
    const int64_t c1 = a.dim(-1);
    record("concat_last", {a, b}, {&y}, [c1](const Grads& g) -> Grads {
      auto [da, db] = ops::split_last(g[0], c1);
      return {da, db};
    });
  }
  return y;
}

Tensor expand_leading(const Tensor& x, int64_t n) {
  Tensor y = ops::expand_leading(x, n);
  if (should_record({&x})) {
    const Shape xs = x.shape();
    record("expand_leading", {x}, {&y},
           [xs](const Grads& g) -> Grads { return {ops::sum_to(g[0], xs)}; });
  }
  return y;
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  Tensor y = x.reshape(shape);
  if (should_record({&x})) {
    const Shape xs = x.shape();
    record("reshape", {x}, {&y}, [xs](const Grads& g) -> Grads { return {g[0].reshape(xs)}; });
  }
  return y;
}

Tensor mean(const Tensor& x, int axis) {
  Tensor y = ops::mean(x, axis);
  if (should_record({&x})) {
    const Shape xs = x.shape();
    record("mean", {x}, {&y},
           [xs, axis](const Grads& g) -> Grads { return {ops::mean_backward(g[0], xs, axis)}; });
  }
  return y;
}

Tensor center(const Tensor& x, int axis) {
  Tensor y = ops::center(x, axis);
  // y = P x with P = I - (1/len) 1 1^T symmetric: dx = P dy
  if (should_record({&x}))
    record("center", {x}, {&y}, [axis](const Grads& g) -> Grads { return {ops::center(g[0], axis)}; });
  return y;
}

Tensor standardize(const Tensor& x, int axis, float eps) {
  ops::Standardized r = ops::standardize(x, axis, eps);
  // dx = rstd * (dy - mean(dy) - y * mean(dy * y))
  if (should_record({&x})) {
    const Tensor y = r.y.detach(), rstd = r.rstd;
    record("standardize", {x}, {&r.y}, [y, rstd, axis](const Grads& g) -> Grads {
      return {ops::standardize_backward(g[0], y, rstd, axis)};
    });
  }
  return r.y;
}

Tensor embedding(const Tensor& indices, const Tensor& table) {
  Tensor y = ops::embedding(indices, table);
  if (should_record({&table})) {
    const int64_t v = table.dim(0);
    record("embedding", {Tensor(), table}, {&y}, [indices, v](const Grads& g) -> Grads {
      return {Tensor(), ops::embedding_backward(g[0], indices, v)};
    });
  }
  return y;
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int heads, float scale,
                 const Tensor& key_mask, Precision precision) {
  const bool grad = should_record({&q, &k, &v});
  if (grad && precision == Precision::kBF16) {
    // mixed precision: q, k, v rounded once; the node keeps them and the output in bf16
    const Tensor q16 = ops::to_bf16(q), k16 = ops::to_bf16(k), v16 = ops::to_bf16(v);
    ops::AttentionOut out = ops::attention(q16, k16, v16, heads, scale, key_mask, precision);
    Tensor o16 = ops::to_bf16(out.out), lse = out.lse;
    record("attention", {q, k, v}, {&out.out},
           [q16, k16, v16, o16, lse, heads, scale, key_mask](const Grads& g) -> Grads {
             ops::AttentionGrads d = ops::attention_backward(g[0], q16, k16, v16, o16, lse, heads, scale, key_mask);
             return {d.dq, d.dk, d.dv};
           });
    return out.out;
  }
  ops::AttentionOut out = ops::attention(q, k, v, heads, scale, key_mask, precision);
  if (grad) {
    Tensor o = out.out.detach(), lse = out.lse;
    record("attention", {q, k, v}, {&out.out},
           [q, k, v, o, lse, heads, scale, key_mask](const Grads& g) -> Grads {
             ops::AttentionGrads d =
                 ops::attention_backward(g[0], q, k, v, o, lse, heads, scale, key_mask);
             return {d.dq, d.dk, d.dv};
           });
  }
  return out.out;
}

Tensor concat_tokens(const std::vector<Tensor>& xs) {
  Tensor y = ops::concat_tokens(xs);
  if (xs.size() == 1) return y;  // the input itself
  bool rec = false;
  for (const Tensor& x : xs) rec = rec || should_record({&x});
  if (rec) {
    std::vector<int64_t> sizes;
    for (const Tensor& x : xs) sizes.push_back(x.dim(1));
    record("concat_tokens", xs, {&y}, [sizes](const Grads& g) -> Grads {
      Grads out;  // each input's rows of dy
      int64_t start = 0;
      for (int64_t n : sizes) {
        out.push_back(ops::slice_tokens(g[0], start, n));
        start += n;
      }
      return out;
    });
  }
  return y;
}

Tensor slice_tokens(const Tensor& x, int64_t start, int64_t len) {
  Tensor y = ops::slice_tokens(x, start, len);
  if (should_record({&x})) {
    const Shape xs = x.shape();
    record("slice_tokens", {x}, {&y}, [xs, start](const Grads& g) -> Grads {
      return {ops::slice_tokens_backward(g[0], xs, start)};
    });
  }
  return y;
}

Tensor gather_tokens(const Tensor& x, const std::vector<int64_t>& idx) {
  Tensor y = ops::gather_tokens(x, idx);
  if (should_record({&x})) {
    const Shape xs = x.shape();
    record("gather_tokens", {x}, {&y}, [xs, idx](const Grads& g) -> Grads {
      return {ops::gather_tokens_backward(g[0], xs, idx)};
    });
  }
  return y;
}

Tensor dropout(const Tensor& x, float p, bool training, Rng& rng) {
  if (!training || p == 0.0f) return x;
  ops::DropoutOut out = ops::dropout(x, p, rng);
  if (should_record({&x})) {
    Tensor mask = out.mask;
    record("dropout", {x}, {&out.y}, [mask](const Grads& g) -> Grads { return {ops::mul(g[0], mask)}; });
  }
  return out.y;
}

Tensor drop_path(const Tensor& x, float p, bool training, Rng& rng) {
  if (!training || p == 0.0f) return x;
  ops::DropPathOut out = ops::drop_path(x, p, rng);
  if (should_record({&x})) {
    Tensor keep = out.keep;
    record("drop_path", {x}, {&out.y}, [keep](const Grads& g) -> Grads { return {ops::drop_path_backward(g[0], keep)}; });
  }
  return out.y;
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, float smoothing) {
  ops::CrossEntropyOut out = ops::cross_entropy(logits, labels, smoothing);
  if (should_record({&logits})) {
    Tensor probs = out.probs;
    record("cross_entropy", {logits}, {&out.loss}, [probs, labels, smoothing](const Grads& g) -> Grads {
      return {ops::cross_entropy_backward(g[0].item(), probs, labels, smoothing)};
    });
  }
  return out.loss;
}

Tensor mse(const Tensor& pred, const Tensor& target) {
  Tensor loss = ops::mse(pred, target);
  if (should_record({&pred})) {
    record("mse", {pred}, {&loss}, [pred, target](const Grads& g) -> Grads {
      return {ops::mse_backward(g[0].item(), pred, target)};
    });
  }
  return loss;
}

Tensor end_point_error(const Tensor& pred, const Tensor& target) {
  Tensor loss = ops::end_point_error(pred, target);
  if (should_record({&pred})) {
    record("end_point_error", {pred}, {&loss}, [pred, target](const Grads& g) -> Grads {
      return {ops::end_point_error_backward(g[0].item(), pred, target)};
    });
  }
  return loss;
}

}  // namespace perceiver::ag
