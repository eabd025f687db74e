// ops::conv2d and conv2d_backward (im2col + cpu::gemm) against the double direct-loop reference
// on odd shapes: HF's 7x7/2 pad-3 stem, patchify (k = s = 4), 1x1 with and without stride,
// asymmetric kernels, single-image and multi-chunk batches, every GEMM provider; shape errors.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "kernels/reference/conv2d.h"
#include "ops/op_test_util.h"
#include "perceiver/core/gemm_provider.h"
#include "perceiver/ops/conv2d.h"
#include "testing/compare.h"
#include "testing/provider_scope.h"

namespace perceiver {
namespace {

using testing::all_close;
using testing::f32_tol;
using testing::randn;
using testing::ProviderScope;
using testing::throws_op_error;
using testing::to_double;

struct ConvCase {
  ref::Conv2dShape s;
  bool bias;
};

std::ostream& operator<<(std::ostream& os, const ConvCase& c) {
  const ref::Conv2dShape& s = c.s;
  return os << "x[" << s.B << "," << s.Cin << "," << s.H << "," << s.W << "] w[" << s.Cout << ","
            << s.Cin << "," << s.kh << "," << s.kw << "] s(" << s.sh << "," << s.sw << ") p(" << s.ph
            << "," << s.pw << ")" << (c.bias ? " bias" : "");
}

struct Inputs {
  Tensor x, w, b;
};

Inputs make_inputs(const ConvCase& c, uint64_t seed) {
  const ref::Conv2dShape& s = c.s;
  return {randn({s.B, s.Cin, s.H, s.W}, seed), randn({s.Cout, s.Cin, s.kh, s.kw}, seed + 1),
          c.bias ? randn({s.Cout}, seed + 2) : Tensor()};
}

Tensor forward(const Inputs& in, const ref::Conv2dShape& s) {
  return ops::conv2d(in.x, in.w, in.b, static_cast<int>(s.sh), static_cast<int>(s.sw),
                     static_cast<int>(s.ph), static_cast<int>(s.pw));
}

std::vector<double> ref_forward(const Inputs& in, const ref::Conv2dShape& s) {
  std::vector<double> y(static_cast<size_t>(s.B * s.Cout * s.OH() * s.OW()));
  const std::vector<double> x = to_double(in.x), w = to_double(in.w);
  const std::vector<double> b = in.b.defined() ? to_double(in.b) : std::vector<double>();
  ref::conv2d_forward(y.data(), x.data(), w.data(), in.b.defined() ? b.data() : nullptr, s);
  return y;
}

class Conv2dOp : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Conv2dOp, ForwardMatchesReference) {
  const ConvCase c = GetParam();
  const ref::Conv2dShape& s = c.s;
  const Inputs in = make_inputs(c, 1);
  const Tensor y = forward(in, s);
  ASSERT_EQ(y.shape(), (Shape{s.B, s.Cout, s.OH(), s.OW()}));
  EXPECT_TRUE(all_close(y, ref_forward(in, s), f32_tol(s.Cin * s.kh * s.kw), "y"));
}

TEST_P(Conv2dOp, BackwardMatchesReference) {
  const ConvCase c = GetParam();
  const ref::Conv2dShape& s = c.s;
  const Inputs in = make_inputs(c, 4);
  const int64_t P = s.OH() * s.OW();
  const Tensor dy = randn({s.B, s.Cout, s.OH(), s.OW()}, 7);
  const ops::Conv2dGrads g = ops::conv2d_backward(dy, in.x, in.w, s.sh, s.sw, s.ph, s.pw, true,
                                                  true, true);
  std::vector<double> dx(in.x.numel()), dw(in.w.numel()), db(s.Cout);
  const std::vector<double> dyd = to_double(dy), xd = to_double(in.x), wd = to_double(in.w);
  ref::conv2d_backward(dx.data(), dw.data(), db.data(), dyd.data(), xd.data(), wd.data(), s);
  EXPECT_TRUE(all_close(g.dx, dx, f32_tol(s.Cout * s.kh * s.kw), "dx"));
  EXPECT_TRUE(all_close(g.dw, dw, f32_tol(s.B * P), "dw"));
  EXPECT_TRUE(all_close(g.db, db, f32_tol(s.B * P), "db"));
}

TEST_P(Conv2dOp, EveryGemmProviderAgrees) {
  const ConvCase c = GetParam();
  const ref::Conv2dShape& s = c.s;
  const Inputs in = make_inputs(c, 10);
  const Tensor dy = randn({s.B, s.Cout, s.OH(), s.OW()}, 13);
  std::vector<double> dx(in.x.numel()), dw(in.w.numel()), db(s.Cout);
  const std::vector<double> dyd = to_double(dy), xd = to_double(in.x), wd = to_double(in.w);
  ref::conv2d_backward(dx.data(), dw.data(), db.data(), dyd.data(), xd.data(), wd.data(), s);
  for (GemmProvider p : {GemmProvider::kOneDNN, GemmProvider::kOpenBLAS, GemmProvider::kNaive}) {
    ProviderScope scope(p);
    const std::string name = gemm_provider_name(p);
    EXPECT_TRUE(all_close(forward(in, s), ref_forward(in, s), f32_tol(s.Cin * s.kh * s.kw), name + " y"));
    const ops::Conv2dGrads g =
        ops::conv2d_backward(dy, in.x, in.w, s.sh, s.sw, s.ph, s.pw, true, true, false);
    EXPECT_TRUE(all_close(g.dx, dx, f32_tol(s.Cout * s.kh * s.kw), name + " dx"));
    EXPECT_TRUE(all_close(g.dw, dw, f32_tol(s.B * s.OH() * s.OW()), name + " dw"));
  }
}

// {B, Cin, H, W, Cout, kh, kw, sh, sw, ph, pw}
INSTANTIATE_TEST_SUITE_P(
    Shapes, Conv2dOp,
    ::testing::Values(ConvCase{{2, 3, 11, 13, 5, 7, 7, 2, 2, 3, 3}, false},  // HF stem, odd image
                      ConvCase{{2, 3, 24, 32, 8, 7, 7, 2, 2, 3, 3}, false},  // HF fixture -> 12x16
                      ConvCase{{3, 3, 16, 20, 6, 4, 4, 4, 4, 0, 0}, true},   // patchify
                      ConvCase{{2, 3, 18, 19, 4, 4, 4, 4, 4, 0, 0}, true},   // patchify, ragged edge
                      ConvCase{{2, 5, 7, 9, 4, 1, 1, 1, 1, 0, 0}, true},     // pointwise (no im2col)
                      ConvCase{{2, 5, 7, 9, 4, 1, 1, 2, 2, 0, 0}, true},     // conv1x1, downsample 2
                      ConvCase{{1, 2, 9, 8, 3, 3, 5, 1, 2, 1, 2}, true},     // asymmetric, B = 1
                      ConvCase{{5, 3, 10, 10, 4, 3, 3, 1, 1, 1, 1}, true},   // several images a chunk
                      ConvCase{{7, 2, 15, 20, 3, 3, 3, 1, 1, 1, 1}, true},   // groups of 3 images + a rest
                      ConvCase{{7, 6, 5, 3, 4, 1, 1, 1, 1, 0, 0}, true},     // pointwise, grouped images
                      ConvCase{{3, 2, 6, 5, 3, 5, 5, 1, 1, 2, 2}, true},     // "same" 5x5: shifts of 2
                      ConvCase{{2, 3, 4, 7, 2, 3, 5, 1, 1, 1, 2}, true},     // "same" 3x5, asymmetric
                      ConvCase{{3, 2, 1, 3, 2, 3, 3, 1, 1, 1, 1}, true},     // "same" on a 1-row map
                      ConvCase{{2, 2, 2, 2, 3, 5, 5, 1, 1, 2, 2}, true},     // "same" 5x5 on a 2x2 map
                      ConvCase{{2, 2, 4, 3, 3, 7, 7, 2, 3, 3, 3}, false},    // kernel > image
                      ConvCase{{1, 3, 40, 36, 16, 7, 7, 2, 2, 3, 3}, false}));  // threaded im2col

TEST(Conv2dOp, HfStemShapes) {
  // 24x32 -> 12x16 (7x7/2, pad 3); 224x224 -> 112x112.
  EXPECT_EQ(ops::conv2d(randn({1, 3, 24, 32}, 1), randn({4, 3, 7, 7}, 2), Tensor(), 2, 2, 3, 3).shape(),
            (Shape{1, 4, 12, 16}));
  EXPECT_EQ(ops::conv2d(randn({1, 3, 224, 224}, 1), randn({2, 3, 7, 7}, 2), Tensor(), 2, 2, 3, 3).shape(),
            (Shape{1, 2, 112, 112}));
}

TEST(Conv2dOp, BackwardComputesOnlyWhatIsAsked) {
  const Tensor x = randn({2, 3, 8, 8}, 1), w = randn({4, 3, 3, 3}, 2), dy = randn({2, 4, 4, 4}, 3);
  ops::Conv2dGrads g = ops::conv2d_backward(dy, x, w, 2, 2, 1, 1, false, true, false);
  EXPECT_FALSE(g.dx.defined());
  EXPECT_TRUE(g.dw.defined());
  EXPECT_FALSE(g.db.defined());
  g = ops::conv2d_backward(dy, x, w, 2, 2, 1, 1, false, false, false);
  EXPECT_FALSE(g.dx.defined() || g.dw.defined() || g.db.defined());
}

TEST(Conv2dOp, EmptyBatch) {
  const Tensor x = Tensor::zeros({0, 3, 8, 8}), w = randn({4, 3, 3, 3}, 2);
  EXPECT_EQ(ops::conv2d(x, w, Tensor(), 1, 1, 1, 1).shape(), (Shape{0, 4, 8, 8}));
  const ops::Conv2dGrads g =
      ops::conv2d_backward(Tensor::zeros({0, 4, 8, 8}), x, w, 1, 1, 1, 1, true, true, true);
  EXPECT_EQ(g.dw.to_vector(), std::vector<float>(4 * 3 * 9, 0.0f));
  EXPECT_EQ(g.db.to_vector(), std::vector<float>(4, 0.0f));
}

TEST(Conv2dOp, RejectsBadInputs) {
  const Tensor x = randn({2, 3, 11, 13}, 1), w = randn({5, 3, 7, 7}, 2), b = randn({5}, 3);
  auto conv = [&](const Tensor& xx, const Tensor& ww, const Tensor& bb, int s, int p) {
    return [=] { ops::conv2d(xx, ww, bb, s, s, p, p); };
  };
  EXPECT_TRUE(throws_op_error(conv(randn({3, 11, 13}, 1), w, b, 2, 3), "conv2d"));       // rank 3
  EXPECT_TRUE(throws_op_error(conv(x, randn({5, 3, 7}, 1), b, 2, 3), "conv2d"));         // w rank
  EXPECT_TRUE(throws_op_error(conv(x, randn({5, 4, 7, 7}, 1), b, 2, 3), "conv2d"));      // Cin
  EXPECT_TRUE(throws_op_error(conv(x, w, randn({4}, 1), 2, 3), "conv2d"));               // bias
  EXPECT_TRUE(throws_op_error(conv(x, w, b, 0, 3), "conv2d"));                           // stride
  EXPECT_TRUE(throws_op_error(conv(x, w, b, 2, -1), "conv2d"));                          // padding
  EXPECT_TRUE(throws_op_error(conv(randn({2, 3, 5, 13}, 1), w, b, 2, 0), "conv2d"));     // too small
  EXPECT_TRUE(throws_op_error(conv(Tensor::zeros({2, 3, 11, 13}, DType::kI32), w, b, 2, 3), "conv2d"));
  EXPECT_TRUE(throws_op_error(conv(Tensor(), w, b, 2, 3), "conv2d"));
  EXPECT_TRUE(throws_op_error(conv(x, randn({0, 3, 7, 7}, 1), Tensor(), 2, 3), "conv2d"));
  // The message states what was expected and what arrived.
  try {
    ops::conv2d(x, randn({5, 4, 7, 7}, 1), b, 2, 2, 3, 3);
    ADD_FAILURE() << "did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "[conv2d] x: expected Cin = 4 channels (w shape [5, 4, 7, 7]), got x shape [2, 3, 11, 13]");
  }
  const Tensor dy = randn({2, 5, 6, 7}, 4);
  EXPECT_NO_THROW(ops::conv2d_backward(dy, x, w, 2, 2, 3, 3, true, true, true));
  EXPECT_TRUE(throws_op_error([&] { ops::conv2d_backward(randn({2, 5, 6, 6}, 1), x, w, 2, 2, 3, 3, true, true, true); },
                              "conv2d_backward"));
  EXPECT_TRUE(throws_op_error([&] { ops::conv2d_backward(dy, x, w, 1, 1, 3, 3, true, true, true); },
                              "conv2d_backward"));
  EXPECT_TRUE(throws_op_error([&] { ops::conv2d_backward(Tensor(), x, w, 2, 2, 3, 3, true, true, true); },
                              "conv2d_backward"));
}

}  // namespace
}  // namespace perceiver
