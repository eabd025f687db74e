// Perceiver IO helpers beyond the shared ag:: set (row lookups, row broadcast, division, NCHW to
// tokens) and raw-input layout moves, with their gradient rules recorded on the tape.
#include "perceiver/models/perceiver_io/tensor_ops.h"

#include <cstring>

#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/ops/elementwise.h"

namespace perceiver::models::perceiver_io {

using autograd::record;
using autograd::should_record;
using Grads = std::vector<Tensor>;

Tensor gather_rows(const Tensor& table, const std::vector<int64_t>& idx) {
  check(table.defined() && table.rank() == 2, "[gather_rows] table must be (T, C), got ",
        table.defined() ? shape_str(table.shape()) : "undefined");
  std::vector<int32_t> i32;
  for (int64_t i : idx) {
    check(i >= 0 && i < table.dim(0), "[gather_rows] index ", i, " is outside [0, ", table.dim(0), ")");
    i32.push_back(static_cast<int32_t>(i));
  }
  return ag::embedding(Tensor::from_vector_i32({static_cast<int64_t>(i32.size())}, i32), table);
}

Tensor broadcast_row(const Tensor& row, int64_t batch, int64_t tokens) {
  check(row.defined() && (row.rank() == 1 || (row.rank() == 2 && row.dim(0) == 1)),
        "[broadcast_row] row must be (C) or (1, C), got ",
        row.defined() ? shape_str(row.shape()) : "undefined");
  const int64_t c = row.dim(-1);
  Tensor flat = row.rank() == 1 ? row : ag::reshape(row, {c});
  return ag::reshape(ag::expand_leading(flat, batch * tokens), {batch, tokens, c});
}

Tensor divide(const Tensor& x, float d) {
  check(x.defined() && x.dtype() == DType::kF32, "[divide] x must be float32");
  check(d != 0.0f, "[divide] divisor must be non-zero");
  Tensor y = Tensor::empty(x.shape());
  const float* s = x.f32();
  float* o = y.f32();
  for (int64_t i = 0; i < x.numel(); ++i) o[i] = s[i] / d;
  if (should_record({&x})) {
    record("divide", {x}, {&y}, [d](const Grads& g) -> Grads {
      Tensor dx = Tensor::empty(g[0].shape());
      float* o = dx.f32();
      const float* s = g[0].f32();
      for (int64_t i = 0; i < dx.numel(); ++i) o[i] = s[i] / d;
      return {dx};
    });
  }
  return y;
}

Tensor nchw_to_tokens(const Tensor& x) {
  check(x.defined() && x.dtype() == DType::kF32 && x.rank() == 4,
        "[nchw_to_tokens] expected float32 (B, C, H, W), got ",
        x.defined() ? dtype_name(x.dtype()) + shape_str(x.shape()) : std::string("undefined"));
  const int64_t b = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
  Tensor y = Tensor::empty({b, hw, c});
  for (int64_t n = 0; n < b; ++n)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* s = x.f32() + (n * c + ch) * hw;
      float* o = y.f32() + n * hw * c + ch;
      for (int64_t p = 0; p < hw; ++p) o[p * c] = s[p];
    }
  if (should_record({&x})) {
    const Shape xs = x.shape();
    record("nchw_to_tokens", {x}, {&y}, [xs, b, c, hw](const Grads& g) -> Grads {
      Tensor dx = Tensor::empty(xs);
      for (int64_t n = 0; n < b; ++n)
        for (int64_t ch = 0; ch < c; ++ch) {
          float* o = dx.f32() + (n * c + ch) * hw;
          const float* s = g[0].f32() + n * hw * c + ch;
          for (int64_t p = 0; p < hw; ++p) o[p] = s[p * c];
        }
      return {dx};
    });
  }
  return y;
}

Tensor stack(const std::vector<Tensor>& xs) {
  check(!xs.empty(), "[stack] needs at least one tensor");
  Shape shape{static_cast<int64_t>(xs.size())};
  shape.insert(shape.end(), xs[0].shape().begin(), xs[0].shape().end());
  Tensor y = Tensor::empty(shape);
  const int64_t n = xs[0].numel();
  for (size_t i = 0; i < xs.size(); ++i) {
    check(xs[i].shape() == xs[0].shape() && xs[i].dtype() == DType::kF32,
          "[stack] expected float32 tensors of shape ", shape_str(xs[0].shape()), ", got ",
          shape_str(xs[i].shape()));
    std::memcpy(y.f32() + i * n, xs[i].f32(), static_cast<size_t>(n) * sizeof(float));
  }
  return y;
}

Tensor to_float(const Tensor& x) {
  if (x.dtype() == DType::kF32) return x;
  check(x.dtype() == DType::kI32, "[to_float] expected float32 or int32, got ", dtype_name(x.dtype()));
  Tensor y = Tensor::empty(x.shape());
  const int32_t* s = x.data<int32_t>();
  float* o = y.f32();
  for (int64_t i = 0; i < x.numel(); ++i) o[i] = static_cast<float>(s[i]);
  return y;
}

Tensor channels_last(const Tensor& x) {
  check(x.rank() == 4 || x.rank() == 5, "[channels_last] expected (B, C, H, W) or (B, T, C, H, W), got ",
        shape_str(x.shape()));
  const Tensor xf = to_float(x);
  const bool video = x.rank() == 5;
  const int64_t outer = video ? x.dim(0) * x.dim(1) : x.dim(0);
  const int64_t c = x.dim(-3), hw = x.dim(-2) * x.dim(-1);
  Shape shape = x.shape();
  shape.erase(shape.end() - 3);
  shape.push_back(c);
  Tensor y = Tensor::empty(shape);
  for (int64_t n = 0; n < outer; ++n)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* s = xf.f32() + (n * c + ch) * hw;
      float* o = y.f32() + n * hw * c + ch;
      for (int64_t p = 0; p < hw; ++p) o[p * c] = s[p];
    }
  return y;
}

Tensor space_to_depth(const Tensor& x, int64_t tb, int64_t sb) {
  check(x.rank() == 4 || x.rank() == 5, "[space_to_depth] expected (B, C, H, W) or (B, T, C, H, W), got ",
        shape_str(x.shape()));
  check(tb >= 1 && sb >= 1, "[space_to_depth] block sizes must be >= 1");
  const Tensor xf = to_float(x);
  const bool video = x.rank() == 5;
  const int64_t b = x.dim(0), t = video ? x.dim(1) : 1, c = x.dim(-3), h = x.dim(-2), w = x.dim(-1);
  if (!video) tb = 1;
  check(t % tb == 0 && h % sb == 0 && w % sb == 0, "[space_to_depth] input ", shape_str(x.shape()),
        ": expected frames divisible by ", tb, " and height/width divisible by ", sb);
  const int64_t to = t / tb, ho = h / sb, wo = w / sb, co = tb * sb * sb * c;
  Shape shape = video ? Shape{b, to, ho, wo, co} : Shape{b, ho, wo, co};
  Tensor y = Tensor::empty(shape);
  const float* s = xf.f32();
  float* o = y.f32();
  // out[b, to, ho, wo, ((dt*sb + dy)*sb + dx)*C + c] = in[b, to*tb + dt, c, ho*sb + dy, wo*sb + dx]
  for (int64_t n = 0; n < b; ++n)
    for (int64_t ot = 0; ot < to; ++ot)
      for (int64_t oy = 0; oy < ho; ++oy)
        for (int64_t ox = 0; ox < wo; ++ox) {
          float* dst = o + (((n * to + ot) * ho + oy) * wo + ox) * co;
          for (int64_t dt = 0; dt < tb; ++dt)
            for (int64_t dy = 0; dy < sb; ++dy)
              for (int64_t dx = 0; dx < sb; ++dx)
                for (int64_t ch = 0; ch < c; ++ch)
                  dst[((dt * sb + dy) * sb + dx) * c + ch] =
                      s[(((n * t + ot * tb + dt) * c + ch) * h + oy * sb + dy) * w + ox * sb + dx];
        }
  return y;
}

}  // namespace perceiver::models::perceiver_io
