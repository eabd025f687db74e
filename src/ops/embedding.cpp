// embedding and embedding_backward (torch.nn.Embedding): validate dtypes, shapes and index
// range, allocate, call kernels/cpu/embedding.
#include "perceiver/ops/embedding.h"

#include "perceiver/core/profiler.h"
#include "kernels/cpu/embedding.h"
#include "ops/validate.h"

namespace perceiver::ops {

using detail::expect_dtype;
using detail::expect_f32;
using detail::expect_shape;

namespace {

// Throws on the first index outside [0, v).
void check_indices(const char* op, const Tensor& indices, int64_t v) {
  const int32_t* idx = indices.data<int32_t>();
  for (int64_t i = 0; i < indices.numel(); ++i)
    check(idx[i] >= 0 && idx[i] < v, "[", op, "] indices: expected values in [0, ", v,
          "), got ", idx[i], " at flat position ", i);
}

Shape with_dim(const Shape& lead, int64_t d) {
  Shape s = lead;
  s.push_back(d);
  return s;
}

}  // namespace

Tensor embedding(const Tensor& indices, const Tensor& table) {
  profiler::Scope prof("embedding");
  expect_dtype("embedding", "indices", indices, DType::kI32);
  expect_f32("embedding", "table", table);
  check(table.rank() == 2, "[embedding] table: expected rank 2 (V, D), got shape ",
        shape_str(table.shape()));
  check_indices("embedding", indices, table.dim(0));
  const int64_t d = table.dim(1);
  Tensor y = Tensor::empty(with_dim(indices.shape(), d));
  cpu::embedding_forward(y.f32(), indices.data<int32_t>(), table.f32(), indices.numel(), d);
  return y;
}

Tensor embedding_backward(const Tensor& dy, const Tensor& indices, int64_t num_embeddings) {
  profiler::Scope prof("embedding_backward");
  expect_f32("embedding_backward", "dy", dy);
  expect_dtype("embedding_backward", "indices", indices, DType::kI32);
  check(num_embeddings > 0, "[embedding_backward] num_embeddings: expected > 0, got ", num_embeddings);
  check(dy.rank() == indices.rank() + 1, "[embedding_backward] dy: expected shape ",
        shape_str(indices.shape()), " + [D], got ", shape_str(dy.shape()));
  const int64_t d = dy.dim(-1);
  expect_shape("embedding_backward", "dy", dy, with_dim(indices.shape(), d));
  check_indices("embedding_backward", indices, num_embeddings);
  Tensor dtable = Tensor::empty({num_embeddings, d});
  cpu::embedding_backward(dtable.f32(), dy.f32(), indices.data<int32_t>(), indices.numel(),
                          num_embeddings, d);
  return dtable;
}

}  // namespace perceiver::ops
