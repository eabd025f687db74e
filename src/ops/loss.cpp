// cross_entropy (label smoothing, ignored labels < 0), mse and end_point_error with their backward ops:
// validate, allocate, call kernels/cpu/loss. 'mean' reduction as in PyTorch.
#include "perceiver/ops/loss.h"

#include "perceiver/core/profiler.h"
#include "kernels/cpu/loss.h"
#include "ops/validate.h"

namespace perceiver::ops {

using detail::expect_dtype;
using detail::expect_f32;
using detail::expect_shape;

namespace {

// logits/probs (R, K), labels int32 (R) with every label < K, smoothing in [0, 1].
void check_ce_args(const char* op, const char* name, const Tensor& x, const Tensor& labels,
                   float smoothing) {
  expect_f32(op, name, x);
  expect_dtype(op, "labels", labels, DType::kI32);
  check(x.rank() == 2 && x.dim(1) > 0, "[", op, "] ", name, ": expected shape (R, K) with K > 0, got ",
        shape_str(x.shape()));
  expect_shape(op, "labels", labels, {x.dim(0)});
  check(smoothing >= 0.0f && smoothing <= 1.0f, "[", op, "] smoothing: expected in [0, 1], got ",
        smoothing);
  const int64_t k = x.dim(1);
  const int32_t* y = labels.data<int32_t>();
  for (int64_t r = 0; r < labels.numel(); ++r)
    check(y[r] < k, "[", op, "] labels: expected values < ", k,
          " (negative = ignored), got ", y[r], " at row ", r);
}

void check_mse_args(const char* op, const Tensor& pred, const Tensor& target) {
  expect_f32(op, "pred", pred);
  expect_f32(op, "target", target);
  expect_shape(op, "target", target, pred.shape());
  check(pred.numel() > 0, "[", op, "] pred: expected at least one element, got shape ",
        shape_str(pred.shape()));
}

// pred, target float32 of one shape (..., 2) with at least one vector.
void check_epe_args(const char* op, const Tensor& pred, const Tensor& target) {
  expect_f32(op, "pred", pred);
  expect_f32(op, "target", target);
  check(pred.rank() >= 1 && pred.dim(-1) == 2 && pred.numel() > 0, "[", op, "] pred: expected shape (..., 2) of flow "
        "vectors (u, v), got ", shape_str(pred.shape()));
  expect_shape(op, "target", target, pred.shape());
}

}  // namespace

CrossEntropyOut cross_entropy(const Tensor& logits, const Tensor& labels, float smoothing) {
  profiler::Scope prof("cross_entropy");
  check_ce_args("cross_entropy", "logits", logits, labels, smoothing);
  CrossEntropyOut out{Tensor::empty({}), Tensor::empty(logits.shape())};
  cpu::cross_entropy_forward(out.loss.f32(), out.probs.f32(), logits.f32(), labels.data<int32_t>(),
                             logits.dim(0), logits.dim(1), smoothing);
  return out;
}

Tensor cross_entropy_backward(float dloss, const Tensor& probs, const Tensor& labels,
                              float smoothing) {
  profiler::Scope prof("cross_entropy_backward");
  check_ce_args("cross_entropy_backward", "probs", probs, labels, smoothing);
  Tensor d = Tensor::empty(probs.shape());
  cpu::cross_entropy_backward(d.f32(), dloss, probs.f32(), labels.data<int32_t>(), probs.dim(0),
                              probs.dim(1), smoothing);
  return d;
}

Tensor mse(const Tensor& pred, const Tensor& target) {
  profiler::Scope prof("mse");
  check_mse_args("mse", pred, target);
  Tensor loss = Tensor::empty({});
  cpu::mse_forward(loss.f32(), pred.f32(), target.f32(), pred.numel());
  return loss;
}

Tensor mse_backward(float dloss, const Tensor& pred, const Tensor& target) {
  profiler::Scope prof("mse_backward");
  check_mse_args("mse_backward", pred, target);
  Tensor d = Tensor::empty(pred.shape());
  cpu::mse_backward(d.f32(), dloss, pred.f32(), target.f32(), pred.numel());
  return d;
}

Tensor end_point_error(const Tensor& pred, const Tensor& target, int64_t* known) {
  profiler::Scope prof("end_point_error");
  check_epe_args("end_point_error", pred, target);
  Tensor loss = Tensor::empty({});
  int64_t n = 0;
  cpu::end_point_error_forward(loss.f32(), &n, pred.f32(), target.f32(), pred.numel() / 2);
  if (known) *known = n;
  return loss;
}

Tensor end_point_error_backward(float dloss, const Tensor& pred, const Tensor& target) {
  profiler::Scope prof("end_point_error_backward");
  check_epe_args("end_point_error_backward", pred, target);
  Tensor d = Tensor::empty(pred.shape());
  cpu::end_point_error_backward(d.f32(), dloss, pred.f32(), target.f32(), pred.numel() / 2);
  return d;
}

}  // namespace perceiver::ops
