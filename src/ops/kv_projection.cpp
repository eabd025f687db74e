// kv_projection: validate, allocate, dispatch to kernels/cpu/kv_projection.
#include "perceiver/ops/kv_projection.h"

#include "kernels/cpu/kv_projection.h"
#include "ops/validate.h"
#include "perceiver/core/profiler.h"

namespace perceiver::ops {
namespace {

using detail::expect_f32;
using detail::expect_shape;

constexpr const char* kOp = "kv_projection";

// Shapes from x, s, wk, wv after checking every argument.
cpu::KvProjectionShape check_args(const Tensor& x, const Tensor& s, const Tensor& ln_w, const Tensor& ln_b,
                                  const Tensor& wk, const Tensor& wv) {
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"x", &x}, {"s", &s}, {"ln_w", &ln_w},
                                {"ln_b", &ln_b}, {"wk", &wk}, {"wv", &wv}})
    expect_f32(kOp, name, *t);
  check(x.rank() == 3 && x.dim(2) >= 1, "[kv_projection] x: expected (B, M, Cx) with Cx >= 1, got shape ",
        shape_str(x.shape()));
  check(s.rank() == 2 && s.dim(0) == x.dim(1) && s.dim(1) >= 1, "[kv_projection] s: expected (M, Cs) = (", x.dim(1),
        ", Cs >= 1), the channels every example shares, got shape ", shape_str(s.shape()));
  cpu::KvProjectionShape sh;
  sh.batch = x.dim(0);
  sh.inputs = x.dim(1);
  sh.own = x.dim(2);
  sh.shared = s.dim(1);
  const int64_t c = sh.channels();
  expect_shape(kOp, "ln_w", ln_w, {c});
  expect_shape(kOp, "ln_b", ln_b, {c});
  check(wk.rank() == 2 && wk.dim(1) == c && wk.dim(0) >= 1, "[kv_projection] wk: expected (Dk, ", c,
        "), got shape ", shape_str(wk.shape()));
  check(wv.rank() == 2 && wv.dim(1) == c && wv.dim(0) >= 1, "[kv_projection] wv: expected (Dv, ", c,
        "), got shape ", shape_str(wv.shape()));
  sh.key_dim = wk.dim(0);
  sh.value_dim = wv.dim(0);
  return sh;
}

}  // namespace

KvProjectionOut kv_projection(const Tensor& x, const Tensor& s, const Tensor& ln_w, const Tensor& ln_b, float eps,
                              const Tensor& wk, const Tensor& bk, const Tensor& wv, const Tensor& bv) {
  const cpu::KvProjectionShape sh = check_args(x, s, ln_w, ln_b, wk, wv);
  expect_f32(kOp, "bk", bk);
  expect_f32(kOp, "bv", bv);
  expect_shape(kOp, "bk", bk, {sh.key_dim});
  expect_shape(kOp, "bv", bv, {sh.value_dim});
  check(eps > 0.0f, "[kv_projection] eps must be positive, got ", eps);
  const double rows = static_cast<double>(sh.batch * sh.inputs);
  profiler::Scope prof(kOp, 2.0 * (rows * sh.own + static_cast<double>(sh.inputs) * sh.shared) * sh.out_dim());
  KvProjectionOut out;
  out.k = Tensor::empty({sh.batch, sh.inputs, sh.key_dim});
  out.v = Tensor::empty({sh.batch, sh.inputs, sh.value_dim});
  out.mean = Tensor::empty({sh.batch, sh.inputs});
  out.rstd = Tensor::empty({sh.batch, sh.inputs});
  Tensor work = Tensor::empty({cpu::kv_projection_forward_workspace(sh)});
  cpu::kv_projection_forward(sh, x.f32(), s.f32(), ln_w.f32(), ln_b.f32(), wk.f32(), bk.f32(), wv.f32(), bv.f32(), eps,
                             out.k.f32(), out.v.f32(), out.mean.f32(), out.rstd.f32(), work.f32());
  return out;
}

KvProjectionGrads kv_projection_backward(const Tensor& dk, const Tensor& dv, const Tensor& x, const Tensor& s,
                                         const Tensor& ln_w, const Tensor& ln_b, const Tensor& wk, const Tensor& wv,
                                         const Tensor& mean, const Tensor& rstd, bool need_dx) {
  const cpu::KvProjectionShape sh = check_args(x, s, ln_w, ln_b, wk, wv);
  const Shape rows{sh.batch, sh.inputs};
  expect_f32(kOp, "mean", mean);
  expect_f32(kOp, "rstd", rstd);
  expect_shape(kOp, "mean", mean, rows);
  expect_shape(kOp, "rstd", rstd, rows);
  // an output no gradient reached contributes zeros
  const Tensor gk = dk.defined() ? dk : Tensor::zeros({sh.batch, sh.inputs, sh.key_dim});
  const Tensor gv = dv.defined() ? dv : Tensor::zeros({sh.batch, sh.inputs, sh.value_dim});
  expect_f32(kOp, "dk", gk);
  expect_f32(kOp, "dv", gv);
  expect_shape(kOp, "dk", gk, {sh.batch, sh.inputs, sh.key_dim});
  expect_shape(kOp, "dv", gv, {sh.batch, sh.inputs, sh.value_dim});
  const double n = static_cast<double>(sh.batch * sh.inputs);
  profiler::Scope prof("kv_projection_backward",
                       2.0 * ((need_dx ? 2.0 : 1.0) * n * sh.own + static_cast<double>(sh.inputs) * sh.shared) *
                           sh.out_dim());
  KvProjectionGrads g;
  const int64_t c = sh.channels();
  if (need_dx) g.dx = Tensor::empty(x.shape());
  g.dln_w = Tensor::empty({c});
  g.dln_b = Tensor::empty({c});
  g.dwk = Tensor::empty({sh.key_dim, c});
  g.dbk = Tensor::empty({sh.key_dim});
  g.dwv = Tensor::empty({sh.value_dim, c});
  g.dbv = Tensor::empty({sh.value_dim});
  Tensor work = Tensor::empty({cpu::kv_projection_backward_workspace(sh)});
  cpu::kv_projection_backward(sh, gk.f32(), gv.f32(), x.f32(), s.f32(), ln_w.f32(), ln_b.f32(), wk.f32(), wv.f32(),
                              mean.f32(), rstd.f32(), need_dx ? g.dx.f32() : nullptr, g.dln_w.f32(), g.dln_b.f32(),
                              g.dwk.f32(), g.dbk.f32(), g.dwv.f32(), g.dbv.f32(), work.f32());
  return g;
}

}  // namespace perceiver::ops
