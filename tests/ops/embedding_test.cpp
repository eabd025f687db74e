// ops::embedding and embedding_backward against the double reference, including repeated
// indices and multi-dimensional index tensors; index-range, dtype and shape errors.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/reference/embedding.h"
#include "ops/op_test_util.h"
#include "perceiver/ops/embedding.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::random_ints;
using testing::randn;
using testing::throws_op_error;
using testing::to_double;

struct EmbCase {
  Shape idx;
  int64_t v, d;
};

class EmbeddingOp : public ::testing::TestWithParam<EmbCase> {};

TEST_P(EmbeddingOp, ForwardAndBackwardMatchReference) {
  const auto [sidx, v, d] = GetParam();
  const int64_t rows = shape_numel(sidx);
  // Fewer rows than V in some cases, more (so repeats are certain) in others.
  const std::vector<int32_t> iv = random_ints(rows, 0, static_cast<int32_t>(v), 101);
  Tensor idx = Tensor::from_vector_i32(sidx, iv), table = randn({v, d}, 102);
  Shape sy = sidx;
  sy.push_back(d);
  Tensor dy = randn(sy, 103);

  std::vector<double> y(rows * d), dt(v * d);
  const std::vector<double> td = to_double(table), dyd = to_double(dy);
  ref::embedding_forward(y.data(), iv.data(), td.data(), rows, d);
  ref::embedding_backward(dt.data(), dyd.data(), iv.data(), rows, v, d);

  Tensor got = ops::embedding(idx, table);
  EXPECT_EQ(got.shape(), sy);
  EXPECT_TRUE(all_close(got, y, 0.0, "embedding"));
  Tensor gt = ops::embedding_backward(dy, idx, v);
  EXPECT_EQ(gt.shape(), (Shape{v, d}));
  EXPECT_TRUE(all_close(gt, dt, f32_tol(rows), "embedding_backward"));
}

INSTANTIATE_TEST_SUITE_P(Cases, EmbeddingOp,
                         ::testing::Values(EmbCase{{1}, 1, 1}, EmbCase{{3, 7}, 5, 7},
                                           EmbCase{{5, 17}, 33, 33}, EmbCase{{2, 3}, 129, 129},
                                           EmbCase{{4097}, 11, 257}));

TEST(EmbeddingOp, RepeatedIndicesAccumulate) {
  Tensor idx = Tensor::from_vector_i32({4}, {2, 0, 2, 2});
  Tensor dy = Tensor::from_vector({4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  EXPECT_EQ(ops::embedding_backward(dy, idx, 3).to_vector(),
            (std::vector<float>{3, 4, 0, 0, 13, 16}));
}

TEST(EmbeddingOp, RejectsBadInputs) {
  Tensor table = randn({5, 3}, 1);
  Tensor idx = Tensor::from_vector_i32({2}, {0, 4});
  EXPECT_TRUE(throws_op_error([&] { ops::embedding(Tensor::from_vector_i32({2}, {0, 5}), table); }, "embedding"));
  EXPECT_TRUE(throws_op_error([&] { ops::embedding(Tensor::from_vector_i32({2}, {-1, 0}), table); }, "embedding"));
  EXPECT_TRUE(throws_op_error([&] { ops::embedding(Tensor::zeros({2}), table); }, "embedding"));
  EXPECT_TRUE(throws_op_error([&] { ops::embedding(idx, randn({15}, 1)); }, "embedding"));
  EXPECT_TRUE(throws_op_error([&] { ops::embedding_backward(randn({3, 3}, 1), idx, 5); }, "embedding_backward"));
  EXPECT_TRUE(throws_op_error([&] { ops::embedding_backward(randn({2}, 1), idx, 5); }, "embedding_backward"));
  EXPECT_TRUE(throws_op_error([&] { ops::embedding_backward(randn({2, 3}, 1), idx, 4); }, "embedding_backward"));
  EXPECT_TRUE(throws_op_error([&] { ops::embedding_backward(randn({2, 3}, 1), idx, 0); }, "embedding_backward"));
}

}  // namespace
}  // namespace perceiver
