// chunked_kv_attention: one tape node. Forward, per sample b and input chunk c:
//   yn_c = LN(y_bc); k_c = yn_c Wk^T + bk; v_c = yn_c Wv^T + bv; (o_c, lse_c) = attention(q_b, k_c, v_c)
//   and (out_b, lse_b) <- log-sum-exp merge of the chunk results (ops::attention_merge).
// Backward recomputes yn_c, k_c, v_c and runs the attention backward on the chunk against the
// final out_b and lse_b (P = e^{S - lse} restricted to the chunk's keys is exact), then
//   dq_b += dq_c;  dWk += dk_c^T yn_c, dbk += sum dk_c (likewise V);  dyn_c = dk_c Wk + dv_c Wv;
//   (dy_c, dLN w, dLN b) = layer_norm_backward(dyn_c).
#include "perceiver/autograd/chunked_kv_attention.h"

#include <algorithm>
#include <limits>

#include "perceiver/autograd/tape.h"
#include "perceiver/ops/attention.h"
#include "perceiver/ops/elementwise.h"
#include "perceiver/ops/layer_norm.h"
#include "perceiver/ops/linear.h"

namespace perceiver::ag {
namespace {

// Rows [j0, j0 + len) of sample b of a (B, M, C) tensor, as a (1, len, C) view.
Tensor chunk_view(const Tensor& t, int64_t b, int64_t j0, int64_t len) {
  const int64_t m = t.dim(1), c = t.dim(2);
  return t.slice0(b, 1).reshape({m, c}).slice0(j0, len).reshape({1, len, c});
}

// Columns [j0, j0 + len) of row b of a (B, M) mask, copied to (1, len); undefined stays so.
Tensor mask_chunk(const Tensor& mask, int64_t b, int64_t j0, int64_t len) {
  if (!mask.defined()) return Tensor();
  Tensor out = Tensor::empty({1, len});
  const float* src = mask.f32() + b * mask.dim(1) + j0;
  std::copy(src, src + len, out.f32());
  return out;
}

void accumulate(Tensor& acc, const Tensor& g) {
  if (!g.defined()) return;
  if (acc.defined()) ops::add_inplace(acc, g);
  else acc = g.clone();
}

struct ChunkKv {
  ops::LayerNormOut ln;
  Tensor k, v;
};

ChunkKv project(const Tensor& y_c, const KvProjection& p) {
  ChunkKv r;
  r.ln = ops::layer_norm(y_c, p.ln_weight, p.ln_bias, p.ln_eps);
  r.k = ops::linear(r.ln.y, p.wk, p.bk);
  r.v = ops::linear(r.ln.y, p.wv, p.bv);
  return r;
}

void check_args(const Tensor& q, const Tensor& y, const KvProjection& p, int heads, int64_t chunk) {
  check(q.defined() && q.rank() == 3, "[chunked_kv_attention] q must be (B, N, H*Dqk), got ",
        q.defined() ? shape_str(q.shape()) : "undefined");
  check(y.defined() && y.rank() == 3 && y.dim(0) == q.dim(0),
        "[chunked_kv_attention] y must be (", q.dim(0), ", M, C), got ",
        y.defined() ? shape_str(y.shape()) : "undefined");
  check(chunk >= 1, "[chunked_kv_attention] chunk must be >= 1, got ", chunk);
  check(heads >= 1, "[chunked_kv_attention] heads must be >= 1, got ", heads);
  const int64_t c = y.dim(2);
  auto shape_of = [](const Tensor& t) { return t.defined() ? shape_str(t.shape()) : std::string("undefined"); };
  check(p.wk.defined() && p.wk.shape() == Shape({q.dim(2), c}), "[chunked_kv_attention] key weight must be (",
        q.dim(2), ", ", c, "), got ", shape_of(p.wk));
  check(p.wv.defined() && p.wv.rank() == 2 && p.wv.dim(1) == c && p.wv.dim(0) % heads == 0,
        "[chunked_kv_attention] value weight must be (H*Dv, ", c, ") with H = ", heads, ", got ", shape_of(p.wv));
  check(p.ln_weight.defined() && p.ln_weight.shape() == Shape({c}) && p.ln_bias.defined() &&
            p.ln_bias.shape() == Shape({c}),
        "[chunked_kv_attention] layer norm weight and bias must be (", c, "), got ", shape_of(p.ln_weight), " and ",
        shape_of(p.ln_bias));
}

}  // namespace

Tensor chunked_kv_attention(const Tensor& q, const Tensor& y, const KvProjection& p, int heads,
                            float scale, const Tensor& key_mask, int64_t chunk) {
  check_args(q, y, p, heads, chunk);
  const int64_t batch = q.dim(0), n = q.dim(1), m = y.dim(1), vw = p.wv.dim(0);
  if (key_mask.defined())
    check(key_mask.shape() == Shape({batch, m}), "[chunked_kv_attention] key_mask must be (",
          batch, ", ", m, "), got ", shape_str(key_mask.shape()));
  // (out, lse) per sample, merged over chunks; a sample with no keys keeps out = 0, lse = -inf
  ops::AttentionOut result{Tensor::zeros({batch, n, vw}), Tensor::empty({batch, heads, n})};
  result.lse.fill(-std::numeric_limits<float>::infinity());
  for (int64_t b = 0; b < batch; ++b) {
    ops::AttentionOut acc{result.out.slice0(b, 1), result.lse.slice0(b, 1)};
    const Tensor q_b = q.slice0(b, 1);
    for (int64_t j0 = 0; j0 < m; j0 += chunk) {
      const int64_t len = std::min(chunk, m - j0);
      const ChunkKv kv = project(chunk_view(y, b, j0, len), p);
      const ops::AttentionOut blk =
          ops::attention(q_b, kv.k, kv.v, heads, scale, mask_chunk(key_mask, b, j0, len));
      ops::attention_merge(acc, blk, heads);
    }
  }
  Tensor out = result.out;
  const std::initializer_list<const Tensor*> ins = {&q, &y, &p.ln_weight, &p.ln_bias, &p.wk, &p.bk, &p.wv, &p.bv};
  if (!autograd::should_record(ins)) return out;
  const Tensor o = out.detach(), lse = result.lse;
  autograd::record(
      "chunked_kv_attention", {q, y, p.ln_weight, p.ln_bias, p.wk, p.bk, p.wv, p.bv}, {&out},
      [q, y, p, heads, scale, key_mask, chunk, o, lse](const std::vector<Tensor>& g) -> std::vector<Tensor> {
        const Tensor& dout = g[0];
        const int64_t batch = q.dim(0), m = y.dim(1);
        const bool need_dy = y.requires_grad();
        Tensor dq = Tensor::zeros(q.shape());
        Tensor dy = need_dy ? Tensor::zeros(y.shape()) : Tensor();
        Tensor dlw, dlb, dwk, dbk, dwv, dbv;
        for (int64_t b = 0; b < batch; ++b) {
          const Tensor q_b = q.slice0(b, 1), o_b = o.slice0(b, 1), lse_b = lse.slice0(b, 1);
          const Tensor dout_b = dout.slice0(b, 1);
          Tensor dq_b = dq.slice0(b, 1);
          for (int64_t j0 = 0; j0 < m; j0 += chunk) {
            const int64_t len = std::min(chunk, m - j0);
            const Tensor y_c = chunk_view(y, b, j0, len);
            const ChunkKv kv = project(y_c, p);
            const ops::AttentionGrads da = ops::attention_backward(
                dout_b, q_b, kv.k, kv.v, o_b, lse_b, heads, scale, mask_chunk(key_mask, b, j0, len));
            ops::add_inplace(dq_b, da.dq);
            const ops::LinearGrads gk = ops::linear_backward(da.dk, kv.ln.y, p.wk, true, true, true);
            const ops::LinearGrads gv = ops::linear_backward(da.dv, kv.ln.y, p.wv, true, true, true);
            accumulate(dwk, gk.dw);
            accumulate(dbk, gk.db);
            accumulate(dwv, gv.dw);
            accumulate(dbv, gv.db);
            Tensor dyn = gk.dx;
            ops::add_inplace(dyn, gv.dx);
            const ops::LayerNormGrads gl =
                ops::layer_norm_backward(dyn, y_c, p.ln_weight, kv.ln.mean, kv.ln.rstd);
            accumulate(dlw, gl.dw);
            accumulate(dlb, gl.db);
            if (need_dy) {
              Tensor dst = chunk_view(dy, b, j0, len);
              dst.copy_from(gl.dx);
            }
          }
        }
        return {dq, dy, dlw, dlb, dwk, dbk, dwv, dbv};
      });
  return out;
}

}  // namespace perceiver::ag
