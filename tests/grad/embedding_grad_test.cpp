// embedding_backward against central finite differences of the double reference lookup with
// respect to the table, with repeated indices: f(table) = sum_i w_i embedding(idx, table)_i.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "kernels/reference/embedding.h"
#include "ops/op_test_util.h"
#include "perceiver/ops/embedding.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::fd_grad;
using testing::random_ints;
using testing::randn;
using testing::to_double;

TEST(EmbeddingGrad, TableWithRepeatedIndices) {
  const std::vector<std::array<int64_t, 3>> cases = {{1, 1, 1}, {7, 3, 5}, {33, 17, 9}, {50, 4, 129}};
  for (const auto& [rows, v, d] : cases) {
    std::vector<int32_t> iv = random_ints(rows, 0, static_cast<int32_t>(v), 111);
    if (rows > 1) iv[1] = iv[0];  // at least one repeat
    Tensor idx = Tensor::from_vector_i32({rows}, iv), table = randn({v, d}, 112), w = randn({rows, d}, 113);
    const auto num = fd_grad(
        [&](const std::vector<double>& t) {
          std::vector<double> y(rows * d);
          ref::embedding_forward(y.data(), iv.data(), t.data(), rows, d);
          return y;
        },
        to_double(table), to_double(w));
    EXPECT_TRUE(all_close(ops::embedding_backward(w, idx, v), num, f32_tol(rows),
                          "dtable rows=" + std::to_string(rows)));
  }
}

}  // namespace
}  // namespace perceiver
