// Differentiable resampling functions and their gradient rules (same style as functions.cpp):
// run the forward op, then, only if a node must be recorded, capture what the backward op needs.
#include "perceiver/autograd/functions_interpolate.h"

#include "perceiver/autograd/tape.h"
#include "perceiver/ops/interpolate.h"
#include "perceiver/ops/layout.h"

namespace perceiver::ag {

using autograd::record;
using autograd::should_record;
using Grads = std::vector<Tensor>;

Tensor interpolate_bicubic(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners) {
  Tensor y = ops::interpolate_bicubic(x, out_h, out_w, align_corners);
  if (should_record({&x})) {
    // dx = the transpose of the resampling applied to dy
    const Shape xs = x.shape();
    record("interpolate_bicubic", {x}, {&y}, [xs, align_corners](const Grads& g) -> Grads {
      return {ops::interpolate_bicubic_backward(g[0], xs, align_corners)};
    });
  }
  return y;
}

Tensor tokens_to_channels_first(const Tensor& x, int64_t h, int64_t w) {
  check(x.rank() == 3 && h >= 1 && w >= 1 && x.dim(1) == h * w, "[tokens_to_channels_first] x: expected (B, ",
        h, " * ", w, ", C), got shape ", shape_str(x.shape()));
  // channels_last_tokens_backward is exactly this permutation; its own inverse is the gradient.
  Tensor y = ops::channels_last_tokens_backward(x, {x.dim(0), x.dim(2), h, w});
  if (should_record({&x}))
    record("tokens_to_channels_first", {x}, {&y},
           [](const Grads& g) -> Grads { return {ops::channels_last_tokens(g[0])}; });
  return y;
}

}  // namespace perceiver::ag
