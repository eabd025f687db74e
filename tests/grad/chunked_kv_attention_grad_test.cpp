// ag::chunked_kv_attention against the same computation composed from the recorded ops
// (layer_norm, linear, attention; each checked against finite differences in its own test):
// forward values and the gradients of q, y and all projection parameters, over several chunk
// sizes (one chunk, ragged last chunk, chunk of 1), with and without a key mask.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "perceiver/autograd/chunked_kv_attention.h"
#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/tape.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::randn;
using testing::to_double;

Tensor param(const Shape& s, uint64_t seed, float scale = 1.0f) {
  Tensor t = randn(s, seed, scale);
  t.set_requires_grad(true);
  return t;
}

// sum(out * w_out): a scalar whose gradient is w_out (a fixed random direction).
Tensor project_to_scalar(const Tensor& out, const Tensor& w_out) {
  const Tensor prod = ag::mul(out, w_out);
  return ag::reshape(ag::mean(ag::reshape(prod, {1, prod.numel()}), 1), {});
}

void check_case(int64_t chunk, bool with_mask) {
  const int64_t B = 2, N = 5, M = 23, C = 7, H = 2, Dqk = 3, Dv = 4;
  Tensor q = param({B, N, H * Dqk}, 1), y = param({B, M, C}, 2);
  ag::KvProjection p{param({C}, 3, 0.3f), param({C}, 4, 0.3f), 1e-5f, param({H * Dqk, C}, 5, 0.4f),
                     param({H * Dqk}, 6), param({H * Dv, C}, 7, 0.4f), param({H * Dv}, 8)};
  Tensor mask;
  if (with_mask) {
    mask = randn({B, M}, 9, 0.5f);
    mask.f32()[3] = -1e9f;
    mask.f32()[M + 17] = -std::numeric_limits<float>::infinity();
  }
  const float scale = 0.57f;
  const Tensor w_out = randn({B, N, H * Dv}, 10);
  std::vector<Tensor> leaves = {q, y, p.ln_weight, p.ln_bias, p.wk, p.bk, p.wv, p.bv};
  const char* names[] = {"q", "y", "ln_w", "ln_b", "wk", "bk", "wv", "bv"};

  auto grads_of = [&](const Tensor& loss) {
    for (Tensor& t : leaves) t.zero_grad();
    autograd::backward(loss);
    std::vector<std::vector<float>> g;
    for (Tensor& t : leaves) g.push_back(t.grad().to_vector());
    return g;
  };
  // composed reference
  const Tensor yn = ag::layer_norm(y, p.ln_weight, p.ln_bias, p.ln_eps);
  const Tensor ref = ag::attention(q, ag::linear(yn, p.wk, p.bk), ag::linear(yn, p.wv, p.bv),
                                   static_cast<int>(H), scale, mask);
  const std::vector<float> ref_out = ref.to_vector();
  const auto ref_grads = grads_of(project_to_scalar(ref, w_out));
  // fused, chunked
  const Tensor got = ag::chunked_kv_attention(q, y, p, static_cast<int>(H), scale, mask, chunk);
  const std::string what = "chunk " + std::to_string(chunk) + (with_mask ? " masked" : "");
  EXPECT_TRUE(all_close(got.to_vector(), std::vector<double>(ref_out.begin(), ref_out.end()),
                        f32_tol(M + C, 16), what + " out"));
  const auto got_grads = grads_of(project_to_scalar(got, w_out));
  for (size_t i = 0; i < leaves.size(); ++i) {
    if (std::string(names[i]) == "bk") {
      // a key bias shifts every score of a query equally, which softmax ignores: the exact
      // gradient is 0, so both sides hold rounding noise only
      for (float v : got_grads[i]) EXPECT_LT(std::fabs(v), 1e-6f) << what << " dbk";
      continue;
    }
    EXPECT_TRUE(all_close(got_grads[i], std::vector<double>(ref_grads[i].begin(), ref_grads[i].end()),
                          f32_tol(M * C, 32), what + " d" + names[i]));
  }
}

TEST(ChunkedKvAttentionGrad, MatchesComposedOps) {
  for (int64_t chunk : {int64_t(100), int64_t(23), int64_t(7), int64_t(1)})
    for (bool mask : {false, true}) check_case(chunk, mask);
}

TEST(ChunkedKvAttentionGrad, RejectsBadArguments) {
  const Tensor q = randn({1, 2, 4}, 1), y = randn({1, 5, 3}, 2);
  ag::KvProjection p{randn({3}, 3), randn({3}, 4), 1e-5f, randn({4, 3}, 5), randn({4}, 6),
                     randn({4, 3}, 7), randn({4}, 8)};
  EXPECT_THROW(ag::chunked_kv_attention(q, y, p, 2, 1.0f, Tensor(), 0), Error);
  EXPECT_THROW(ag::chunked_kv_attention(q, randn({2, 5, 3}, 9), p, 2, 1.0f, Tensor(), 2), Error);
  EXPECT_THROW(ag::chunked_kv_attention(q, y, p, 2, 1.0f, randn({1, 4}, 10), 2), Error);
}

}  // namespace
}  // namespace perceiver
