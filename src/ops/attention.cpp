// Multi-head attention ops: validate shapes, allocate, run the blocked kernels in
// kernels/cpu/attention (heads are contiguous channel slices of q, k, v).
#include "perceiver/ops/attention.h"

#include "perceiver/core/profiler.h"
#include "kernels/cpu/attention.h"
#include "perceiver/ops/convert.h"

namespace perceiver::ops {
namespace {

void check_f32_rank(const Tensor& t, const char* name, int rank, const char* layout, bool allow_bf16 = false) {
  check(t.defined(), "[attention] ", name, " is undefined");
  check(t.dtype() == DType::kF32 || (allow_bf16 && t.dtype() == DType::kBF16), "[attention] ", name,
        allow_bf16 ? " must be float32 or bfloat16, got " : " must be float32, got ", dtype_name(t.dtype()));
  check(t.rank() == rank, "[attention] ", name, " must be ", layout, ", got shape ",
        shape_str(t.shape()));
}

// q, k, v all float32, or all bfloat16 (the mixed-precision products, from bf16 precision only)
cpu::AttentionShape validate(const Tensor& q, const Tensor& k, const Tensor& v, int heads,
                             const Tensor& key_mask, bool allow_bf16 = false) {
  check_f32_rank(q, "q", 3, "(B, N, H*Dqk)", allow_bf16);
  check_f32_rank(k, "k", 3, "(B, M, H*Dqk)", allow_bf16);
  check_f32_rank(v, "v", 3, "(B, M, H*Dv)", allow_bf16);
  check(q.dtype() == k.dtype() && q.dtype() == v.dtype(), "[attention] q, k and v must have one dtype, got ",
        dtype_name(q.dtype()), ", ", dtype_name(k.dtype()), ", ", dtype_name(v.dtype()));
  check(heads >= 1, "[attention] heads must be >= 1, got ", heads);
  const int64_t batch = q.dim(0), n = q.dim(1), m = k.dim(1);
  check(k.dim(0) == batch && v.dim(0) == batch, "[attention] batch dims differ: q ",
        shape_str(q.shape()), ", k ", shape_str(k.shape()), ", v ", shape_str(v.shape()));
  check(v.dim(1) == m, "[attention] k and v must have the same number of keys: k ",
        shape_str(k.shape()), ", v ", shape_str(v.shape()));
  check(k.dim(2) == q.dim(2), "[attention] q and k widths differ: expected k width ", q.dim(2),
        " (q shape ", shape_str(q.shape()), "), got k shape ", shape_str(k.shape()));
  check(q.dim(2) % heads == 0, "[attention] q width ", q.dim(2), " is not divisible by heads ",
        heads, " (q shape ", shape_str(q.shape()), ")");
  check(v.dim(2) % heads == 0, "[attention] v width ", v.dim(2), " is not divisible by heads ",
        heads, " (v shape ", shape_str(v.shape()), ")");
  if (key_mask.defined()) {
    check(key_mask.dtype() == DType::kF32, "[attention] key_mask must be float32, got ",
          dtype_name(key_mask.dtype()));
    check(key_mask.shape() == Shape{batch, m}, "[attention] key_mask must be (B, M) = ",
          shape_str({batch, m}), ", got ", shape_str(key_mask.shape()));
  }
  return {batch, n, m, heads, q.dim(2) / heads, v.dim(2) / heads};
}

void check_same_shape(const Tensor& t, const char* name, const Shape& expected) {
  check(t.defined(), "[attention] ", name, " is undefined");
  check(t.dtype() == DType::kF32, "[attention] ", name, " must be float32, got ",
        dtype_name(t.dtype()));
  check(t.shape() == expected, "[attention] ", name, " must have shape ", shape_str(expected),
        ", got ", shape_str(t.shape()));
}

}  // namespace

AttentionOut attention(const Tensor& q, const Tensor& k, const Tensor& v, int heads, float scale,
                       const Tensor& key_mask, Precision precision) {
  const cpu::AttentionShape s = validate(q, k, v, heads, key_mask, precision == Precision::kBF16);
  // Q K^T and P V
  profiler::Scope prof(precision == Precision::kBF16 ? "attention (bf16)" : "attention",
                       2.0 * s.batch * s.heads * s.n * s.m * (s.dqk + s.dv));
  AttentionOut r;
  r.out = Tensor::empty({s.batch, s.n, s.heads * s.dv});
  r.lse = Tensor::empty({s.batch, s.heads, s.n});
  if (precision == Precision::kBF16) {  // q, k, v rounded to bf16 once (unless they are), fp32 accumulation
    const bool b16 = q.dtype() == DType::kBF16;
    const Tensor q16 = b16 ? q : to_bf16(q), k16 = b16 ? k : to_bf16(k), v16 = b16 ? v : to_bf16(v);
    cpu::attention_forward_bf16(s, q16.bf16(), k16.bf16(), v16.bf16(),
                                key_mask.defined() ? key_mask.f32() : nullptr, scale,
                                r.out.f32(), r.lse.f32());
    return r;
  }
  cpu::attention_forward(s, q.f32(), k.f32(), v.f32(),
                         key_mask.defined() ? key_mask.f32() : nullptr, scale, r.out.f32(),
                         r.lse.f32());
  return r;
}

void attention_merge(AttentionOut& acc, const AttentionOut& blk, int heads) {
  profiler::Scope prof("attention_merge");
  check(heads >= 1, "[attention_merge] heads must be >= 1, got ", heads);
  check_f32_rank(acc.out, "acc.out", 3, "(B, N, H*Dv)");
  check(acc.out.dim(2) % heads == 0, "[attention_merge] out width ", acc.out.dim(2),
        " is not divisible by heads ", heads);
  const int64_t batch = acc.out.dim(0), n = acc.out.dim(1), dv = acc.out.dim(2) / heads;
  check_same_shape(blk.out, "blk.out", acc.out.shape());
  check_same_shape(acc.lse, "acc.lse", {batch, heads, n});
  check_same_shape(blk.lse, "blk.lse", {batch, heads, n});
  cpu::attention_merge({batch, n, 0, heads, 0, dv}, acc.out.f32(), acc.lse.f32(), blk.out.f32(),
                       blk.lse.f32());
}

AttentionGrads attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                  const Tensor& v, const Tensor& out, const Tensor& lse,
                                  int heads, float scale, const Tensor& key_mask) {
  const cpu::AttentionShape s = validate(q, k, v, heads, key_mask, /*allow_bf16=*/true);
  // Q K^T again, dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q
  profiler::Scope prof(q.dtype() == DType::kBF16 ? "attention_backward (bf16)" : "attention_backward",
                       2.0 * s.batch * s.heads * s.n * s.m * (3 * s.dqk + 2 * s.dv));
  const Shape out_shape{s.batch, s.n, s.heads * s.dv};
  check_same_shape(dout, "dout", out_shape);
  check_same_shape(lse, "lse", {s.batch, s.heads, s.n});
  AttentionGrads g;
  g.dq = Tensor::empty(q.shape());
  g.dk = Tensor::empty(k.shape());
  g.dv = Tensor::empty(v.shape());
  if (q.dtype() == DType::kBF16) {  // mixed precision: q, k, v and out saved in bf16
    check(out.defined() && out.dtype() == DType::kBF16 && out.shape() == out_shape, "[attention] out must be "
          "bfloat16 of shape ", shape_str(out_shape), " with bfloat16 q, k, v, got ",
          out.defined() ? dtype_name(out.dtype()) + std::string(" ") + shape_str(out.shape()) : "undefined");
    cpu::attention_backward_bf16(s, dout.f32(), q.bf16(), k.bf16(), v.bf16(), out.bf16(), lse.f32(),
                                 key_mask.defined() ? key_mask.f32() : nullptr, scale, g.dq.f32(), g.dk.f32(),
                                 g.dv.f32());
    return g;
  }
  check_same_shape(out, "out", out_shape);
  cpu::attention_backward(s, dout.f32(), q.f32(), k.f32(), v.f32(), out.f32(), lse.f32(),
                          key_mask.defined() ? key_mask.f32() : nullptr, scale, g.dq.f32(),
                          g.dk.f32(), g.dv.f32());
  return g;
}

}  // namespace perceiver::ops
