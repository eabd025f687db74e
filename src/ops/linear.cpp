// linear (y = x w^T + b), its backward, and batched matmul; every product goes through
// cpu::gemm. linear flattens the leading dims of x into GEMM rows.
#include "perceiver/ops/linear.h"

#include <algorithm>

#include "perceiver/core/parallel.h"
#include "perceiver/core/profiler.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"
#include "perceiver/ops/convert.h"

namespace perceiver::ops {
namespace {

void check_f32(const Tensor& t, const char* op, const char* name) {
  check(t.defined(), "[", op, "] ", name, " is undefined");
  check(t.dtype() == DType::kF32, "[", op, "] ", name, " must be float32, got ",
        dtype_name(t.dtype()));
}

// (..., c_in) -> (..., c_out)
Shape with_last(const Shape& s, int64_t last) {
  Shape out = s;
  out.back() = last;
  return out;
}

// float32 x and w, or bf16 w with float32 or bf16 x (the bf16 products)
void check_linear_args(const Tensor& x, const Tensor& w) {
  check(w.defined(), "[linear] w is undefined");
  if (w.dtype() == DType::kBF16) {
    check(x.defined() && (x.dtype() == DType::kF32 || x.dtype() == DType::kBF16), "[linear] x must be float32 or "
          "bfloat16 with bfloat16 w, got ", x.defined() ? dtype_name(x.dtype()) : "undefined");
  } else {
    check_f32(x, "linear", "x");
    check_f32(w, "linear", "w");
  }
  check(x.rank() >= 1, "[linear] x must have rank >= 1 (..., Cin), got shape ", shape_str(x.shape()));
  check(w.rank() == 2, "[linear] w must be (Cout, Cin), got shape ", shape_str(w.shape()));
  check(x.dim(-1) == w.dim(1), "[linear] x last dim must equal w Cin: expected ", w.dim(1),
        " (w shape ", shape_str(w.shape()), "), got x shape ", shape_str(x.shape()));
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_linear_args(x, w);
  const int64_t cout = w.dim(0), cin = w.dim(1);
  if (b.defined()) {
    check_f32(b, "linear", "b");
    check(b.shape() == Shape{cout}, "[linear] b must be (Cout) = [", cout, "], got shape ",
          shape_str(b.shape()));
  }
  const int64_t rows = x.numel() / std::max<int64_t>(cin, 1);
  profiler::Scope prof(w.dtype() == DType::kBF16 ? "linear (bf16)" : "linear", 2.0 * rows * cin * cout);
  Tensor y = Tensor::empty(with_last(x.shape(), cout));
  float* yp = y.f32();
  // y = x w^T, then y rows += b while y is still in cache (one pass fewer over a cold y than
  // starting y as b and accumulating with beta = 1)
  if (w.dtype() == DType::kBF16) {  // bf16 x bf16 -> fp32: x rounded to bf16 for this GEMM
    const Tensor x16 = x.dtype() == DType::kBF16 ? x : to_bf16(x);
    cpu::gemm_bf16(false, true, rows, cout, cin, 1.0f, x16.bf16(), cin, w.bf16(), cin, 0.0f, yp, cout);
  } else {
    cpu::gemm(false, true, rows, cout, cin, 1.0f, x.f32(), cin, w.f32(), cin, 0.0f, yp, cout);
  }
  if (b.defined()) cpu::add_row_inplace(yp, b.f32(), rows, cout);
  return y;
}

LinearGrads linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w, bool need_dx,
                            bool need_dw, bool need_db) {
  check_linear_args(x, w);
  check_f32(dy, "linear", "dy");
  const int64_t cout = w.dim(0), cin = w.dim(1);
  check(dy.shape() == with_last(x.shape(), cout), "[linear] dy must have shape ",
        shape_str(with_last(x.shape(), cout)), ", got ", shape_str(dy.shape()));
  const int64_t rows = x.numel() / std::max<int64_t>(cin, 1);
  profiler::Scope prof(w.dtype() == DType::kBF16 ? "linear_backward (bf16)" : "linear_backward",
                       2.0 * rows * cin * cout * ((need_dx ? 1 : 0) + (need_dw ? 1 : 0)));
  LinearGrads g;
  if (w.dtype() == DType::kBF16) {  // mixed precision: bf16 products of bf16 dy, w and x
    check(x.dtype() == DType::kBF16, "[linear] the bf16 backward needs x saved in bfloat16, got ",
          dtype_name(x.dtype()));
    // dy is rounded a block of rows at a time (~1 MiB, or 1,024 rows of a wider layer): the bf16
    // copy does not grow with the number of rows
    const int64_t block = std::max<int64_t>(1024, (int64_t(1) << 19) / std::max<int64_t>(cout, 1));
    if (need_dx) g.dx = Tensor::empty(x.shape());
    if (need_dw) g.dw = Tensor::empty(w.shape());
    Tensor dy16 = Tensor::empty({std::min(block, rows), cout}, DType::kBF16);
    for (int64_t r0 = 0; r0 < rows; r0 += block) {
      const int64_t n = std::min(block, rows - r0);
      const float* src = dy.f32() + r0 * cout;
      uint16_t* dst = dy16.bf16();
      parallel_for(n * cout, int64_t(1) << 16, [&](int64_t i0, int64_t i1) { cpu::f32_to_bf16(src + i0, dst + i0, i1 - i0); });
      if (need_dx)  // dx = dy w
        cpu::gemm_bf16(false, false, n, cin, cout, 1.0f, dy16.bf16(), cout, w.bf16(), cin, 0.0f, g.dx.f32() + r0 * cin,
                       cin);
      if (need_dw)  // dw = dy^T x, accumulated over the blocks
        cpu::gemm_bf16(true, false, cout, cin, n, 1.0f, dy16.bf16(), cout, x.bf16() + r0 * cin, cin, r0 == 0 ? 0.0f : 1.0f,
                       g.dw.f32(), cin);
    }
    if (need_dw && rows == 0) std::fill(g.dw.f32(), g.dw.f32() + g.dw.numel(), 0.0f);
  } else {
    if (need_dx) {  // dx = dy w
      g.dx = Tensor::empty(x.shape());
      cpu::gemm(false, false, rows, cin, cout, 1.0f, dy.f32(), cout, w.f32(), cin, 0.0f, g.dx.f32(), cin);
    }
    if (need_dw) {  // dw = dy^T x
      g.dw = Tensor::empty(w.shape());
      cpu::gemm(true, false, cout, cin, rows, 1.0f, dy.f32(), cout, x.f32(), cin, 0.0f, g.dw.f32(), cin);
    }
  }
  if (need_db) {  // db = sum over rows of dy, accumulated in double
    g.db = Tensor::empty({cout});
    cpu::sum_rows_f64(g.db.f32(), dy.f32(), rows, cout);
  }
  return g;
}

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  profiler::Scope prof("matmul");
  check_f32(a, "matmul", "a");
  check_f32(b, "matmul", "b");
  check(a.rank() == 2 || a.rank() == 3, "[matmul] a must be (B, P, Q) or (P, Q), got shape ",
        shape_str(a.shape()));
  check(b.rank() == 2 || b.rank() == 3, "[matmul] b must be (B, P, Q) or (P, Q), got shape ",
        shape_str(b.shape()));
  const int64_t a_rows = a.dim(-2), a_cols = a.dim(-1), b_rows = b.dim(-2), b_cols = b.dim(-1);
  const int64_t m = trans_a ? a_cols : a_rows, k = trans_a ? a_rows : a_cols;
  const int64_t kb = trans_b ? b_cols : b_rows, n = trans_b ? b_rows : b_cols;
  check(k == kb, "[matmul] inner dims differ: op(a) is ", m, " x ", k, " (a shape ",
        shape_str(a.shape()), trans_a ? ", transposed" : "", "), op(b) is ", kb, " x ", n,
        " (b shape ", shape_str(b.shape()), trans_b ? ", transposed" : "", ")");
  const bool batched = a.rank() == 3 || b.rank() == 3;
  const int64_t batch = a.rank() == 3 ? a.dim(0) : (b.rank() == 3 ? b.dim(0) : 1);
  if (a.rank() == 3 && b.rank() == 3)
    check(a.dim(0) == b.dim(0), "[matmul] batch dims differ: a shape ", shape_str(a.shape()),
          ", b shape ", shape_str(b.shape()));
  Tensor c = Tensor::empty(batched ? Shape{batch, m, n} : Shape{m, n});
  const int64_t stride_a = a.rank() == 3 ? a_rows * a_cols : 0;
  const int64_t stride_b = b.rank() == 3 ? b_rows * b_cols : 0;
  cpu::gemm_batched(trans_a, trans_b, m, n, k, 1.0f, a.f32(), a_cols, stride_a, b.f32(), b_cols,
                    stride_b, 0.0f, c.f32(), n, m * n, batch);
  return c;
}

}  // namespace perceiver::ops
