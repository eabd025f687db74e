// Optical flow by tiles (`perceiver flow` and data/optical_flow.h) on the optical-flow fixture
// (train_size 6 x 10): patch features, tile layout, distance-to-edge blending, a pair of exactly
// train_size giving the model's output bit for bit, .flo round trips and the colour-wheel PNG.
#include <cstring>

#include "parity/hf_task_cli_util.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/error.h"
#include "perceiver/core/random.h"
#include "perceiver/data/optical_flow.h"
#include "perceiver/io/atomic_file.h"

namespace perceiver {
namespace {

namespace pio = models::perceiver_io;
using data::RgbImage;
using testing::run_perceiver;

RgbImage random_frame(int64_t h, int64_t w, uint32_t seed) {
  std::vector<uint8_t> px(static_cast<size_t>(h * w * 3));
  uint32_t s = seed;
  for (uint8_t& v : px) v = static_cast<uint8_t>((s = s * 1664525u + 1013904223u) >> 24);
  return data::make_rgb_image(h, w, std::move(px));
}

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.f32(), b.f32(), a.nbytes()) == 0;
}

TEST(HfFlow, PatchFeaturesLayout) {
  const RgbImage f1 = random_frame(5, 7, 1), f2 = random_frame(5, 7, 2);
  const Tensor t = data::flow_patch_features(f1, f2, 1, 2, 3, 4);  // window rows 1..3, cols 2..5
  ASSERT_EQ(t.shape(), (Shape{2, 27, 3, 4}));
  auto at = [&](int f, int ch, int y, int x) { return t.f32()[((f * 27 + ch) * 3 + y) * 4 + x]; };
  auto px = [](const RgbImage& im, int64_t y, int64_t x, int c) { return float(im.at(y, x, c)) / 255.0f * 2.0f - 1.0f; };
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(at(0, (1 * 3 + 1) * 3 + c, 1, 2), px(f1, 2, 4, c));  // centre
    EXPECT_EQ(at(1, (1 * 3 + 1) * 3 + c, 1, 2), px(f2, 2, 4, c));  // frame 2 in slot 1
    EXPECT_EQ(at(0, (0 * 3 + 2) * 3 + c, 1, 1), px(f1, 1, 4, c));  // dy = 0 (up), dx = 2 (right)
    EXPECT_EQ(at(0, (0 * 3 + 0) * 3 + c, 0, 0), 0.0f);             // outside the window: zero
    EXPECT_EQ(at(0, (2 * 3 + 2) * 3 + c, 2, 3), 0.0f);
  }
}

TEST(HfFlow, TileOriginsFollowUpstream) {
  using O = std::vector<std::pair<int64_t, int64_t>>;
  // Sintel frames with the real train_size: rows {0, 68}, columns {0, 476, 528}.
  EXPECT_EQ(data::flow_tile_origins(436, 1024, 368, 496, 20), (O{{0, 0}, {0, 476}, {0, 528}, {68, 0}, {68, 476}, {68, 528}}));
  EXPECT_EQ(data::flow_tile_origins(6, 10, 6, 10, 2), (O{{0, 0}}));
  // 9 x 17 with 6 x 10 tiles: upstream's middle starts (4, 8) would cross the border: clamped.
  EXPECT_EQ(data::flow_tile_origins(9, 17, 6, 10, 2), (O{{0, 0}, {0, 7}, {3, 0}, {3, 7}}));
  EXPECT_THROW(data::flow_tile_origins(9, 17, 6, 10, 6), Error);
  EXPECT_THROW(data::flow_tile_origins(5, 17, 6, 10, 2), Error);
}

TEST(HfFlow, BlendingWeightsAreDistanceToEdge) {
  const RgbImage f = random_frame(9, 17, 3);
  std::vector<std::pair<int64_t, int64_t>> seen;
  // Tile k returns the constant flow (k, -k).
  const Tensor flow = data::tiled_flow(f, f, 6, 10, 2, [&](const Tensor& x) {
    Tensor out = Tensor::empty({x.dim(0), 6, 10, 2});
    for (int64_t i = 0; i < out.numel(); i += 2) {
      const float k = static_cast<float>(seen.size() + static_cast<size_t>(i / 120));
      out.f32()[i] = k;
      out.f32()[i + 1] = -k;
    }
    seen.emplace_back(0, 0);
    return out;
  });
  ASSERT_EQ(flow.shape(), (Shape{9, 17, 2}));
  auto u = [&](int64_t y, int64_t x) { return flow.f32()[(y * 17 + x) * 2]; };
  EXPECT_EQ(u(0, 0), 0.0f);   // only tile 0 (origin 0,0)
  EXPECT_EQ(u(8, 16), 3.0f);  // only tile 3 (origin 3,7)
  EXPECT_EQ(u(0, 16), 1.0f);
  // (4, 8): tile 0 weight min(5, 2, 9, 2) = 2, tile 1 (x0 7) min(5, 2, 2, 9) = 2,
  // tile 2 (y0 3) min(2, 5, 9, 2) = 2, tile 3 min(2, 5, 2, 9) = 2: the mean 1.5.
  EXPECT_FLOAT_EQ(u(4, 8), 1.5f);
  // (2, 8): tiles 0 and 1 only, weights min(3, 4, 9, 2) = 2 and min(3, 4, 2, 9) = 2.
  EXPECT_FLOAT_EQ(u(2, 8), 0.5f);
  // (4, 3): tiles 0 (weight min(5, 2, 4, 7) = 2) and 2 (y0 3: min(2, 5, 4, 7) = 2).
  EXPECT_FLOAT_EQ(u(4, 3), 1.0f);
  // (3, 8): tile 0 min(4,3,9,2)=2, tile 1 min(4,3,2,9)=2, tile 2 min(1,6,9,2)=1, tile 3 min(1,6,2,9)=1.
  EXPECT_FLOAT_EQ(u(3, 8), (0 * 2 + 1 * 2 + 2 * 1 + 3 * 1) / 6.0f);
  for (int64_t i = 0; i < flow.numel(); i += 2) EXPECT_EQ(flow.f32()[i + 1], -flow.f32()[i]);
  // Several tiles per forward pass give the same field.
  seen.clear();
  int calls = 0;
  const Tensor batched = data::tiled_flow(f, f, 6, 10, 2, [&](const Tensor& x) {
    ++calls;
    Tensor out = Tensor::empty({x.dim(0), 6, 10, 2});
    for (int64_t i = 0; i < out.numel(); i += 2) {
      const float k = static_cast<float>((calls - 1) * 3 + i / 120);
      out.f32()[i] = k;
      out.f32()[i + 1] = -k;
    }
    return out;
  }, 3);
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(bit_equal(batched, flow));
}

TEST(HfFlow, CliSingleTileIsTheModelOutputAndTilesBlend) {
  testing::TempDir tmp;
  const std::string dir = testing::make_family_folder("optical-flow-perceiver", tmp.path + "/m");
  auto model = testing::load_perceiver_io_folder(dir);
  autograd::NoGradGuard no_grad;
  auto run_model = [&](const Tensor& x) { return model->forward({{"inputs", x}}).at("logits"); };

  // A pair of exactly train_size: one tile, the model's output bit for bit (times --flow-scale).
  const RgbImage a = random_frame(6, 10, 11), b = random_frame(6, 10, 12);
  data::write_png_rgb(tmp.path + "/a.png", a);
  data::write_png_rgb(tmp.path + "/b.png", b);
  const Tensor direct = run_model(data::flow_patch_features(a, b, 0, 0, 6, 10).reshape({1, 2, 27, 6, 10})).reshape({6, 10, 2});
  testing::CliRun r = run_perceiver({"flow", "--model", dir, tmp.path + "/a.png", tmp.path + "/b.png", "--out",
                                     tmp.path + "/one.flo", "--flow-scale", "1", "--min-overlap", "0"});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("6 x 10 flow from 1 tile of 6 x 10"), std::string::npos) << r.out;
  EXPECT_TRUE(bit_equal(data::read_flo(tmp.path + "/one.flo"), direct));
  r = run_perceiver({"flow", "--model", dir, tmp.path + "/a.png", tmp.path + "/b.png", "--out", tmp.path + "/one20.flo", "--min-overlap", "5"});
  ASSERT_EQ(r.code, 0) << r.out;
  const Tensor scaled = data::read_flo(tmp.path + "/one20.flo");
  for (int64_t i = 0; i < scaled.numel(); ++i) ASSERT_EQ(scaled.f32()[i], direct.f32()[i] * 20.0f) << i;

  // 9 x 17 frames: 4 tiles; the CLI equals the in-process tiling; the PNG has the frame size.
  const RgbImage c = random_frame(9, 17, 13), d = random_frame(9, 17, 14);
  data::write_png_rgb(tmp.path + "/c.png", c);
  data::write_png_rgb(tmp.path + "/d.png", d);
  r = run_perceiver({"flow", "--model", dir, tmp.path + "/c.png", tmp.path + "/d.png", "--out", tmp.path + "/big.flo",
                     "--png", tmp.path + "/big.png", "--min-overlap", "2", "--flow-scale", "1"});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("9 x 17 flow from 4 tiles of 6 x 10"), std::string::npos) << r.out;
  const Tensor big = data::read_flo(tmp.path + "/big.flo");
  ASSERT_EQ(big.shape(), (Shape{9, 17, 2}));
  EXPECT_TRUE(bit_equal(big, data::tiled_flow(c, d, 6, 10, 2, run_model)));
  // The top-left corner is covered by tile (0, 0) alone: exactly its model output there.
  const Tensor corner = run_model(data::flow_patch_features(c, d, 0, 0, 6, 10).reshape({1, 2, 27, 6, 10}));
  EXPECT_EQ(big.f32()[0], corner.f32()[0]);
  EXPECT_EQ(big.f32()[1], corner.f32()[1]);
  // Several tiles per forward pass: the same field up to GEMM blocking.
  r = run_perceiver({"flow", "--model", dir, tmp.path + "/c.png", tmp.path + "/d.png", "--out", tmp.path + "/b3.flo",
                     "--min-overlap", "2", "--flow-scale", "1", "--tile-batch", "3"});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_LE(testing::forward_ratio(data::read_flo(tmp.path + "/b3.flo"), big), 0.01);
  const RgbImage png = data::load_image_rgb(tmp.path + "/big.png");
  EXPECT_EQ(png.height, 9);
  EXPECT_EQ(png.width, 17);
}

TEST(HfFlow, FloRoundTripAndColours) {
  testing::TempDir tmp;
  Tensor flow = Tensor::empty({3, 5, 2});
  for (int64_t i = 0; i < flow.numel(); ++i) flow.f32()[i] = 0.37f * static_cast<float>(i) - 4.1f;
  data::write_flo(tmp.path + "/f.flo", flow);
  const std::string bytes = io::read_file(tmp.path + "/f.flo");
  ASSERT_EQ(bytes.size(), 12u + 3 * 5 * 8);
  EXPECT_EQ(bytes.substr(0, 4), "PIEH");
  int32_t dims[2];
  std::memcpy(dims, bytes.data() + 4, 8);
  EXPECT_EQ(dims[0], 5);  // width first
  EXPECT_EQ(dims[1], 3);
  EXPECT_TRUE(bit_equal(data::read_flo(tmp.path + "/f.flo"), flow));
  io::write_file_atomic(tmp.path + "/short.flo", bytes.substr(0, bytes.size() - 4));
  io::write_file_atomic(tmp.path + "/magic.flo", "XXXX" + bytes.substr(4));
  EXPECT_THROW(data::read_flo(tmp.path + "/short.flo"), Error);
  EXPECT_THROW(data::read_flo(tmp.path + "/magic.flo"), Error);
  EXPECT_THROW(data::read_flo(tmp.path + "/missing.flo"), Error);

  // Zero flow is white, unknown flow black, rightward flow red-magenta at full saturation.
  Tensor f = Tensor::zeros({1, 3, 2});
  f.f32()[2] = 1e10f;
  f.f32()[4] = 1.0f;
  const RgbImage col = data::flow_to_color(f);
  EXPECT_EQ(col.at(0, 0, 0), 255);
  EXPECT_EQ(col.at(0, 0, 1), 255);
  EXPECT_EQ(col.at(0, 0, 2), 255);
  EXPECT_EQ(col.at(0, 1, 0), 0);
  EXPECT_EQ(col.at(0, 2, 0), 255);
  EXPECT_EQ(col.at(0, 2, 1), 0);
  EXPECT_LT(col.at(0, 2, 2), 60);
}

TEST(HfFlow, ErrorsAreOneLine) {
  testing::TempDir tmp;
  const std::string dir = testing::make_family_folder("optical-flow-perceiver", tmp.path + "/m");
  const std::string lm = testing::make_family_folder("language-perceiver", tmp.path + "/lm");
  data::write_png_rgb(tmp.path + "/a.png", random_frame(9, 17, 1));
  data::write_png_rgb(tmp.path + "/b.png", random_frame(9, 16, 2));
  data::write_png_rgb(tmp.path + "/s.png", random_frame(5, 17, 3));
  const std::string a = tmp.path + "/a.png";
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const Case cases[] = {
      {{"flow", "--model", dir, a, tmp.path + "/b.png", "--out", tmp.path + "/o.flo"}, "the frames must have the same size"},
      {{"flow", "--model", dir, tmp.path + "/s.png", tmp.path + "/s.png", "--out", tmp.path + "/o.flo", "--min-overlap", "2"},
       "must be at least the model's train_size (6 x 10)"},
      {{"flow", "--model", dir, a, a, "--out", tmp.path + "/o.flo"}, "min_overlap must be in [0, 6)"},
      {{"flow", "--model", lm, a, a, "--out", tmp.path + "/o.flo"}, "expected a PerceiverForOpticalFlow model folder"},
      {{"flow", "--model", dir, a, tmp.path + "/nope.png", "--out", tmp.path + "/o.flo"}, "nope.png"},
      {{"flow", "--model", dir, a, a}, "--out is required"},
      {{"flow", "--model", dir, a, a, "--out", tmp.path + "/o.flo", "--tile-batch", "0"}, "--tile-batch"},
  };
  for (const Case& c : cases) {
    const testing::CliRun r = run_perceiver(c.args);
    EXPECT_NE(r.code, 0) << c.message;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << "expected '" << c.message << "' in: " << r.out;
    EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << "not one line: " << r.out;
  }
}

}  // namespace
}  // namespace perceiver
