// ops::relative_logits and its backward against the double reference on square, wide, tall and
// one-row maps; the offsets read match timm's rel_logits_1d (a hand-made 2 x 3 case); shape errors.
#include <gtest/gtest.h>

#include <ostream>
#include <vector>

#include "kernels/reference/relative_logits.h"
#include "ops/op_test_util.h"
#include "perceiver/ops/relative_logits.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::randn;
using testing::throws_op_error;
using testing::to_double;

struct MapCase {
  int64_t n, h, w;
};
std::ostream& operator<<(std::ostream& os, const MapCase& c) { return os << c.n << " x " << c.h << "x" << c.w; }

class RelativeLogitsOp : public ::testing::TestWithParam<MapCase> {};

TEST_P(RelativeLogitsOp, ForwardMatchesReference) {
  const MapCase c = GetParam();
  const int64_t hw = c.h * c.w;
  const Tensor rw = randn({c.n, hw, 2 * c.w - 1}, 1), rh = randn({c.n, hw, 2 * c.h - 1}, 2);
  const Tensor y = ops::relative_logits(rw, rh, c.h, c.w);
  ASSERT_EQ(y.shape(), (Shape{c.n, hw, hw}));
  std::vector<double> ref(y.numel());
  const auto rwd = to_double(rw), rhd = to_double(rh);
  ref::relative_logits_forward(ref.data(), rwd.data(), rhd.data(), c.n, c.h, c.w);
  EXPECT_TRUE(all_close(y, ref, f32_tol(2), "y"));
}

TEST_P(RelativeLogitsOp, BackwardMatchesReference) {
  const MapCase c = GetParam();
  const int64_t hw = c.h * c.w;
  const Tensor dy = randn({c.n, hw, hw}, 3);
  const ops::RelativeLogitsGrads g = ops::relative_logits_backward(dy, c.h, c.w);
  ASSERT_EQ(g.drw.shape(), (Shape{c.n, hw, 2 * c.w - 1}));
  ASSERT_EQ(g.drh.shape(), (Shape{c.n, hw, 2 * c.h - 1}));
  std::vector<double> drw(g.drw.numel()), drh(g.drh.numel());
  const auto dyd = to_double(dy);
  ref::relative_logits_backward(drw.data(), drh.data(), dyd.data(), c.n, c.h, c.w);
  EXPECT_TRUE(all_close(g.drw, drw, f32_tol(static_cast<int>(c.h)), "drw"));
  EXPECT_TRUE(all_close(g.drh, drh, f32_tol(static_cast<int>(c.w)), "drh"));
}

INSTANTIATE_TEST_SUITE_P(Maps, RelativeLogitsOp,
                         ::testing::Values(MapCase{2, 4, 4}, MapCase{3, 2, 5}, MapCase{1, 7, 3}, MapCase{2, 1, 6},
                                           MapCase{2, 5, 1}, MapCase{1, 1, 1}, MapCase{8, 16, 16}));

// Offsets as timm's rel_logits_1d reads them: key column jw of query column iw reads
// width_rel index jw - iw + W - 1 (and rows likewise), here on a 2 x 3 map with tables that
// encode their own index.
TEST(RelativeLogitsOp, ReadsTheOffsetOfKeyMinusQuery) {
  const int64_t h = 2, w = 3, hw = 6;
  std::vector<float> rw(hw * (2 * w - 1)), rh(hw * (2 * h - 1));
  for (int64_t i = 0; i < hw; ++i) {
    for (int64_t r = 0; r < 2 * w - 1; ++r) rw[i * (2 * w - 1) + r] = static_cast<float>(r);
    for (int64_t r = 0; r < 2 * h - 1; ++r) rh[i * (2 * h - 1) + r] = 100.0f * static_cast<float>(r);
  }
  const Tensor y = ops::relative_logits(Tensor::from_vector({1, hw, 2 * w - 1}, rw),
                                        Tensor::from_vector({1, hw, 2 * h - 1}, rh), h, w);
  const std::vector<float> v = y.to_vector();
  // query (1, 0) = i 3; key (0, 2) = j 2: width offset 2 - 0 + 2 = 4, height offset 0 - 1 + 1 = 0
  EXPECT_EQ(v[3 * hw + 2], 4.0f);
  // query (0, 2) = i 2; key (1, 0) = j 3: width 0 - 2 + 2 = 0, height 1 - 0 + 1 = 2
  EXPECT_EQ(v[2 * hw + 3], 200.0f);
  // the diagonal reads the zero offsets W - 1 and H - 1
  for (int64_t i = 0; i < hw; ++i) EXPECT_EQ(v[i * hw + i], 2.0f + 100.0f) << i;
}

TEST(RelativeLogitsOp, ShapeErrorsNameTheOperand) {
  EXPECT_TRUE(throws_op_error([] { ops::relative_logits(randn({2, 6, 4}, 1), randn({2, 6, 3}, 2), 2, 3); },
                              "relative_logits"));  // rw needs 2W - 1 = 5 offsets
  EXPECT_TRUE(throws_op_error([] { ops::relative_logits(randn({2, 6, 5}, 1), randn({2, 6, 4}, 2), 2, 3); },
                              "relative_logits"));  // rh needs 2H - 1 = 3
  EXPECT_TRUE(throws_op_error([] { ops::relative_logits(randn({2, 6, 5}, 1), randn({1, 6, 3}, 2), 2, 3); },
                              "relative_logits"));  // n differs
  EXPECT_TRUE(throws_op_error([] { ops::relative_logits(randn({2, 6, 5}, 1), randn({2, 6, 3}, 2), 0, 3); },
                              "relative_logits"));
  EXPECT_TRUE(throws_op_error([] { ops::relative_logits_backward(randn({2, 6, 5}, 1), 2, 3); },
                              "relative_logits_backward"));
}

}  // namespace
}  // namespace perceiver
