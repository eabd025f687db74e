// channels_last_tokens, image_patches and their backwards: validate, allocate, call
// kernels/cpu/layout. channels_last_tokens is torch's x.permute(0, 2, 3, 1).reshape(B, -1, C)
// generalised to any spatial rank.
#include "perceiver/ops/layout.h"

#include "perceiver/core/profiler.h"
#include "kernels/cpu/layout.h"
#include "ops/validate.h"

namespace perceiver::ops {
namespace {

// Spatial size S = prod(shape[2:]) of a (B, C, *spatial) shape.
int64_t spatial_of(const Shape& s) {
  int64_t n = 1;
  for (size_t i = 2; i < s.size(); ++i) n *= s[i];
  return n;
}

}  // namespace

Tensor channels_last_tokens(const Tensor& x) {
  profiler::Scope prof("channels_last_tokens");
  detail::expect_f32("channels_last_tokens", "x", x);
  check(x.rank() >= 3, "[channels_last_tokens] x: expected rank >= 3 (B, C, *spatial), got shape ",
        shape_str(x.shape()));
  const int64_t B = x.dim(0), C = x.dim(1), S = spatial_of(x.shape());
  Tensor y = Tensor::empty({B, S, C});
  cpu::channels_last_tokens(y.f32(), x.f32(), B, C, S);
  return y;
}

Tensor channels_last_tokens_backward(const Tensor& dy, const Shape& input_shape) {
  profiler::Scope prof("channels_last_tokens_backward");
  constexpr const char* op = "channels_last_tokens_backward";
  check(input_shape.size() >= 3, "[", op, "] input_shape: expected rank >= 3 (B, C, *spatial), got ",
        shape_str(input_shape));
  for (int64_t d : input_shape)
    check(d >= 0, "[", op, "] input_shape: expected non-negative dims, got ", shape_str(input_shape));
  const int64_t B = input_shape[0], C = input_shape[1], S = spatial_of(input_shape);
  detail::expect_f32(op, "dy", dy);
  detail::expect_shape(op, "dy", dy, {B, S, C});
  Tensor dx = Tensor::empty(input_shape);
  cpu::channels_last_tokens_backward(dx.f32(), dy.f32(), B, C, S);
  return dx;
}

namespace {

void check_patch_size(const char* op, int k) {
  check(k >= 1 && k % 2 == 1 && k <= 63, "[", op, "] k: expected an odd patch size in [1, 63], got ", k);
}

}  // namespace

Tensor image_patches(const Tensor& x, int k) {
  profiler::Scope prof("image_patches");
  constexpr const char* op = "image_patches";
  detail::expect_f32(op, "x", x);
  check(x.rank() == 4, "[", op, "] x: expected rank 4 (B, H, W, C), got shape ", shape_str(x.shape()));
  check_patch_size(op, k);
  const int64_t B = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  Tensor y = Tensor::empty({B, H, W, k * k * C});
  cpu::image_patches(y.f32(), x.f32(), B, H, W, C, k);
  return y;
}

Tensor image_patches_backward(const Tensor& dy, const Shape& input_shape, int k) {
  profiler::Scope prof("image_patches_backward");
  constexpr const char* op = "image_patches_backward";
  check(input_shape.size() == 4, "[", op, "] input_shape: expected rank 4 (B, H, W, C), got ", shape_str(input_shape));
  for (int64_t d : input_shape)
    check(d >= 0, "[", op, "] input_shape: expected non-negative dims, got ", shape_str(input_shape));
  check_patch_size(op, k);
  const int64_t B = input_shape[0], H = input_shape[1], W = input_shape[2], C = input_shape[3];
  detail::expect_f32(op, "dy", dy);
  detail::expect_shape(op, "dy", dy, {B, H, W, k * k * C});
  Tensor dx = Tensor::empty(input_shape);
  cpu::image_patches_backward(dx.f32(), dy.f32(), B, H, W, C, k);
  return dx;
}

}  // namespace perceiver::ops
