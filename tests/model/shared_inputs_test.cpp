// A cross-attention layer given its inputs as each example's own channels plus channels every
// example shares (PerceiverLayer::forward's y_shared, the Perceiver's Fourier features): the same
// outputs and gradients as the full rows [own, shared], with and without activation checkpointing
// (plain and chunked), and in mixed precision; shape errors.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/core/error.h"
#include "perceiver/nn/perceiver_layer.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::randn;

struct Fixture {
  nn::PerceiverLayerConfig config;
  Tensor x, own, shared, mask, w_out;
  Fixture() {
    config.is_cross = true;
    config.q_dim = 12;
    config.kv_dim = 9;  // 3 own + 6 shared channels
    config.num_heads = 3;
    config.widening_factor = 2;
    config.init_std = 0.3f;
    config = nn::resolve_layer_config(config);
    x = randn({2, 5, 12}, 31);
    own = randn({2, 45, 3}, 32);
    shared = randn({45, 6}, 33);
    mask = randn({2, 45}, 34, 0.5f);
    mask.f32()[7] = -1e9f;
    w_out = randn({2, 5, 12}, 35);
  }
};

using Grads = std::map<std::string, std::vector<float>>;

// out, and the gradients of sum(out * w_out) for x, the own channels and every parameter
Grads run(nn::PerceiverLayer& layer, const Fixture& f, bool with_shared) {
  Tensor x = f.x.clone(), own = f.own.clone();
  x.set_requires_grad(true);
  own.set_requires_grad(true);
  layer.visit_parameters([](const std::string&, Tensor& p) { p.zero_grad(); });
  const Tensor out = with_shared ? layer.forward(x, own, f.mask, nullptr, f.shared)
                                 : layer.forward(x, ag::concat_last(own, ag::expand_leading(f.shared, 2)), f.mask, nullptr);
  autograd::backward(ag::reshape(ag::mean(ag::reshape(ag::mul(out, f.w_out), {1, 120}), 1), {}));
  Grads g;
  g["out"] = out.to_vector();
  g["x"] = x.grad().to_vector();
  g["own"] = own.grad().to_vector();
  layer.visit_parameters([&](const std::string& name, Tensor& p) {
    if (name.find("key.bias") == std::string::npos)  // exactly 0 in theory: rounding noise only
      g[name] = p.grad().to_vector();
  });
  return g;
}

void expect_close(const Grads& got, const Grads& want, double tol, const std::string& what) {
  for (const auto& [name, v] : want) {
    const std::vector<double> ref(v.begin(), v.end());
    EXPECT_TRUE(testing::all_close(got.at(name), ref, tol, what + " " + name));
  }
}

TEST(SharedInputs, CrossLayerMatchesFullRows) {
  const Fixture f;
  Rng init(3);
  nn::PerceiverLayer layer(f.config, init);
  const Grads full = run(layer, f, false), shared = run(layer, f, true);
  expect_close(shared, full, testing::f32_tol(45 * 12, 32), "shared");
  EXPECT_NE(shared.at("out"), full.at("out")) << "the shared-channel path did not run (identical rounding)";
  // activation checkpointing: the layer recomputed from x and the own channels only
  layer.set_activation_checkpointing(true);
  expect_close(run(layer, f, true), full, testing::f32_tol(45 * 12, 32), "checkpointed");
}

TEST(SharedInputs, ChunkedAndMixedPrecisionPathsMatchFullRows) {
  Fixture f;
  f.config.kv_chunk = 8;  // checkpointing then projects 8 inputs at a time from the full rows
  Rng init(3);
  nn::PerceiverLayer layer(f.config, init);
  const Grads full = run(layer, f, false);
  layer.set_activation_checkpointing(true);
  expect_close(run(layer, f, true), full, testing::f32_tol(45 * 12, 32), "chunked");
  layer.set_activation_checkpointing(false);
  layer.set_precision(Precision::kBF16);
  layer.train(true);
  const Grads mixed = run(layer, f, true);
  expect_close(mixed, full, 8.0 / 256, "bf16");  // outputs and every gradient
}

// One example: the layer writes the full rows out (the shared path would save no work); the
// result still equals the full rows'.
TEST(SharedInputs, OneExampleMatchesFullRows) {
  Fixture f;
  f.x = randn({1, 5, 12}, 41);
  f.own = randn({1, 45, 3}, 42);
  f.mask = Tensor();
  f.w_out = randn({1, 5, 12}, 43);
  Rng init(3);
  nn::PerceiverLayer layer(f.config, init);
  const Tensor a = layer.forward(f.x, f.own, Tensor(), nullptr, f.shared);
  const Tensor b = layer.forward(f.x, ag::concat_last(f.own, ag::expand_leading(f.shared, 1)), Tensor(), nullptr);
  EXPECT_EQ(a.to_vector(), b.to_vector());
}

TEST(SharedInputs, RejectsMismatchedShapes) {
  const Fixture f;
  Rng init(3);
  nn::PerceiverLayer layer(f.config, init);
  auto message = [&](const Tensor& own, const Tensor& shared) {
    try {
      layer.forward(f.x, own, Tensor(), nullptr, shared);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(f.own, randn({44, 6}, 1)).find("y_shared must be (M, Cs) with y's M"), std::string::npos);
  EXPECT_NE(message(f.own, randn({45, 5}, 1)).find("y must be (2, M, 4) beside y_shared's 5 channels"),
            std::string::npos);
  EXPECT_NE(message(f.own, randn({45}, 1)).find("y_shared must be (M, Cs)"), std::string::npos);
}

}  // namespace
}  // namespace perceiver
