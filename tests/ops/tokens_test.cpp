// ops::concat_tokens / slice_tokens / gather_tokens against the scalar gather reference on odd
// shapes (rank 3 and 4), and their errors.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "kernels/reference/tokens.h"
#include "perceiver/ops/tokens.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::randn;
using testing::to_double;

std::vector<int64_t> range(int64_t start, int64_t len) {
  std::vector<int64_t> v(static_cast<size_t>(len));
  std::iota(v.begin(), v.end(), start);
  return v;
}

TEST(TokensOp, SliceAndGatherMatchReference) {
  const Tensor x = randn({3, 11, 2, 5}, 1);  // inner = 10
  const Tensor s = ops::slice_tokens(x, 4, 6);
  ASSERT_EQ(s.shape(), (Shape{3, 6, 2, 5}));
  const auto ref_s = ref::gather_tokens(to_double(x), 3, 11, 10, range(4, 6));
  EXPECT_TRUE(testing::all_close(s, ref_s, 0.0, "slice"));
  const std::vector<int64_t> idx = {10, 0, 3, 3, 7};
  const Tensor g = ops::gather_tokens(x, idx);
  ASSERT_EQ(g.shape(), (Shape{3, 5, 2, 5}));
  EXPECT_TRUE(testing::all_close(g, ref::gather_tokens(to_double(x), 3, 11, 10, idx), 0.0, "gather"));
}

TEST(TokensOp, ConcatIsTheInverseOfSlicing) {
  const Tensor a = randn({2, 3, 7}, 2), b = randn({2, 1, 7}, 3), c = randn({2, 5, 7}, 4);
  const Tensor y = ops::concat_tokens({a, b, c});
  ASSERT_EQ(y.shape(), (Shape{2, 9, 7}));
  EXPECT_EQ(ops::slice_tokens(y, 0, 3).to_vector(), a.to_vector());
  EXPECT_EQ(ops::slice_tokens(y, 3, 1).to_vector(), b.to_vector());
  EXPECT_EQ(ops::slice_tokens(y, 4, 5).to_vector(), c.to_vector());
  EXPECT_TRUE(ops::concat_tokens({a}).same_storage(a));
}

TEST(TokensOp, ErrorsNameTheOpAndShapes) {
  const Tensor x = randn({2, 4, 3}, 5);
  EXPECT_THROW(ops::slice_tokens(x, 3, 2), Error);
  EXPECT_THROW(ops::slice_tokens(x, 0, 0), Error);
  EXPECT_THROW(ops::gather_tokens(x, {4}), Error);
  EXPECT_THROW(ops::gather_tokens(x, {}), Error);
  EXPECT_THROW(ops::concat_tokens({x, randn({2, 4, 2}, 6)}), Error);
  EXPECT_THROW(ops::concat_tokens({}), Error);
  EXPECT_THROW(ops::slice_tokens(randn({5}, 7), 0, 1), Error);
  try {
    ops::gather_tokens(x, {9});
    ADD_FAILURE() << "gather_tokens accepted index 9 of 4 tokens";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[gather_tokens] index 9 is outside [0, 4)"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace perceiver
