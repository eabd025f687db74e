// Tape semantics: fan-out sums, accumulation into leaves, no-grad mode records nothing,
// a freed graph cannot be replayed, broadcast/reshape/expand gradients, nodes keep no input data.
#include <gtest/gtest.h>

#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/autograd/meta.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/core/allocator.h"
#include "perceiver/ops/elementwise.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

Tensor leaf(const Shape& s, const std::vector<float>& v) {
  Tensor t = Tensor::from_vector(s, v);
  t.set_requires_grad(true);
  return t;
}

TEST(Autograd, FanOutSumsGradients) {
  Tensor x = leaf({3}, {1.0f, -2.0f, 0.5f});
  // f = sum(mean-free): y = x * x + x  ->  df/dx = 2x + 1
  Tensor y = ag::add(ag::mul(x, x), x);
  Tensor loss = ag::mean(ag::reshape(y, {1, 3}), 1);
  autograd::backward(ag::reshape(loss, {}));
  std::vector<float> g = x.grad().to_vector();
  EXPECT_NEAR(g[0], (2 * 1.0f + 1) / 3, 1e-6);
  EXPECT_NEAR(g[1], (2 * -2.0f + 1) / 3, 1e-6);
  EXPECT_NEAR(g[2], (2 * 0.5f + 1) / 3, 1e-6);
}

// y = a + b for equal shapes, recorded with a rule that returns one tensor for both inputs (the
// tape allows it; ag::add itself copies b's).
Tensor add_sharing_gradient(const Tensor& a, const Tensor& b) {
  Tensor y = ops::add(a, b);
  if (autograd::should_record({&a, &b}))
    autograd::record("add_sharing_gradient", {a, b}, {&y}, [](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{g[0], g[0]};
    });
  return y;
}

// Fan-out sums run in place only into a running sum nothing else holds. The walk below (reverse
// topological order) reaches add_sharing_gradient first, which hands one tensor to a and b, then
// a's second use (which adds to a's sum), and b's only afterwards: an in-place sum there would
// change b's gradient too. f = mean(b) + mean(a) + mean(a + b), a = 2x, b = 3x ->
// df/dx = (3 + 2 + 2 + 3) / 6.
TEST(Autograd, InPlaceFanOutSumsLeaveSharedGradientsAlone) {
  Tensor x = leaf({2, 3}, {1.0f, -2.0f, 0.5f, 4.0f, 0.0f, -1.0f});
  const Tensor a = ag::scale(x, 2.0f), b = ag::scale(x, 3.0f);
  auto mean_of = [](const Tensor& t) { return ag::mean(ag::reshape(t, {1, 6}), 1); };
  const Tensor loss = ag::add(mean_of(b), ag::add(mean_of(a), mean_of(add_sharing_gradient(a, b))));
  autograd::backward(ag::reshape(loss, {}));
  for (float g : x.grad().to_vector()) EXPECT_FLOAT_EQ(g, 10.0f / 6.0f);
}

TEST(Autograd, LeafGradientsAccumulateUntilZeroGrad) {
  Tensor x = leaf({2}, {1.0f, 2.0f});
  for (int i = 0; i < 2; ++i) {
    Tensor loss = ag::reshape(ag::mean(ag::reshape(ag::scale(x, 3.0f), {1, 2}), 1), {});
    autograd::backward(loss);
  }
  EXPECT_FLOAT_EQ(x.grad().to_vector()[0], 3.0f);  // 2 x (3 / 2)
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, NoGradRecordsNothing) {
  Tensor x = leaf({2, 2}, {1, 2, 3, 4});
  Tensor w = leaf({3, 2}, {1, 0, 0, 1, 1, 1});
  autograd::NoGradGuard guard;
  Tensor y = ag::gelu(ag::linear(x, w, Tensor()));
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.autograd_meta(), nullptr);  // inference allocates no autograd state at all
}

TEST(Autograd, InputsWithoutGradRecordNothing) {
  Tensor x = Tensor::from_vector({2}, {1, 2});
  Tensor y = ag::scale(x, 2.0f);
  EXPECT_EQ(y.autograd_meta(), nullptr);
}

TEST(Autograd, ReplayingAFreedGraphIsAnError) {
  Tensor x = leaf({1, 2}, {1.0f, 2.0f});
  Tensor loss = ag::reshape(ag::mean(ag::scale(x, 2.0f), 1), {});
  autograd::backward(loss);
  EXPECT_THROW(autograd::backward(loss), Error);
}

TEST(Autograd, BackwardNeedsScalarRootOrSeed) {
  Tensor x = leaf({2}, {1.0f, 2.0f});
  Tensor y = ag::scale(x, 2.0f);
  try {
    autograd::backward(y);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[backward]"), std::string::npos) << e.what();
  }
  autograd::backward(y, Tensor::from_vector({2}, {1.0f, -1.0f}));
  EXPECT_FLOAT_EQ(x.grad().to_vector()[1], -2.0f);
}

TEST(Autograd, AFailingRuleLeavesLeafGradientsUntouched) {
  Tensor x = leaf({1, 2}, {1.0f, 2.0f});
  Tensor w = leaf({1, 2}, {3.0f, 4.0f});
  Tensor y = ag::add(ag::scale(x, 2.0f), w);  // leaves: x (through scale), w (directly)
  // A custom node whose rule returns a wrongly shaped gradient.
  Tensor bad = y.clone();
  autograd::record("bad", {y}, {&bad}, [](const std::vector<Tensor>&) -> std::vector<Tensor> {
    return {Tensor::zeros({3})};
  });
  EXPECT_THROW(autograd::backward(ag::reshape(ag::mean(bad, 1), {})), Error);
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(w.grad().defined());
}

TEST(Autograd, BroadcastAddAndExpandSumOverBatch) {
  Tensor lat = leaf({2, 3}, {0, 1, 2, 3, 4, 5});
  Tensor b = leaf({3}, {1, 1, 1});
  Tensor z = ag::add(ag::expand_leading(lat, 4), b);  // (4, 2, 3)
  Tensor loss = ag::reshape(ag::mean(ag::reshape(z, {1, 24}), 1), {});
  autograd::backward(loss);
  for (float g : lat.grad().to_vector()) EXPECT_NEAR(g, 4.0f / 24.0f, 1e-7);
  for (float g : b.grad().to_vector()) EXPECT_NEAR(g, 8.0f / 24.0f, 1e-7);
}

// A node holds where its inputs' gradients go, not their data: an intermediate whose consumer's
// rule does not read it (add) is freed as soon as the caller drops it, graph or not; what a rule
// captures (mul keeps both factors) stays until backward.
TEST(Autograd, NodesKeepOnlyWhatTheirRulesCapture) {
  Tensor x0 = leaf({1}, {1.0f});
  Tensor x = ag::expand_leading(x0, 1 << 20);  // (2^20, 1): 4 MiB, part of the graph
  const size_t big = size_t(4) << 20;
  Tensor t = ag::scale(x, 2.0f);       // another 4 MiB intermediate
  Tensor y = ag::add(t, x);            // its rule reads no input
  const size_t with_t = memory_stats().bytes_in_use;
  t = Tensor();
  EXPECT_GE(with_t - memory_stats().bytes_in_use, big) << "the add node kept its input alive";
  Tensor u = ag::scale(x, 3.0f);
  Tensor z = ag::mul(u, x);            // its rule captures u and x
  const size_t with_u = memory_stats().bytes_in_use;
  u = Tensor();
  EXPECT_LT(with_u - memory_stats().bytes_in_use, big) << "mul's rule needs u";
  // and the gradients are still right: d/dx sum(2x + x + 3x * x) = 3 + 6x = 9 per element
  autograd::backward(ag::reshape(ag::mean(ag::reshape(ag::add(y, z), {1, 1 << 20}), 1), {}));
  EXPECT_NEAR(x0.grad().item(), 9.0f, 1e-4f);
}

}  // namespace
}  // namespace perceiver
