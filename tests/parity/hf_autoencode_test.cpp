// `perceiver autoencode` on the multimodal fixture: chunked decoding equals unchunked decoding,
// the reconstruction at the fixture's subsampled points equals the reference logits, the
// reconstructions are the logits in the input layouts; errors are one line.
#include "parity/hf_task_cli_util.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/autograd/grad_mode.h"

namespace perceiver {
namespace {

namespace pio = models::perceiver_io;
using pio::TensorMap;
using testing::run_perceiver;

TensorMap autoencode(const std::string& dir, const std::string& inputs, const std::string& out, int64_t chunk) {
  const testing::CliRun r = run_perceiver({"autoencode", "--model", dir, "--inputs", inputs, "--outputs", out,
                                           "--chunk-size", std::to_string(chunk)});
  EXPECT_EQ(r.code, 0) << r.out;
  return io::load_safetensors(out).tensors;
}

// Rows idx of axis 1 of a (B, T, C) tensor.
Tensor rows(const Tensor& x, const std::vector<int64_t>& idx) {
  const int64_t b = x.dim(0), t = x.dim(1), c = x.numel() / (b * t);
  Tensor out = Tensor::empty({b, static_cast<int64_t>(idx.size()), c});
  for (int64_t n = 0; n < b; ++n)
    for (size_t i = 0; i < idx.size(); ++i)
      std::copy_n(x.f32() + (n * t + idx[i]) * c, c, out.f32() + (n * static_cast<int64_t>(idx.size()) + static_cast<int64_t>(i)) * c);
  return out;
}

std::vector<int64_t> ints(const Tensor& t) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t.data<int32_t>()[i]);
  return v;
}

TEST(HfAutoencode, ChunkedEqualsUnchunkedAndTheReference) {
  testing::TempDir tmp;
  const testing::HfFixture fx = testing::load_hf_fixture("multimodal-perceiver");
  const std::string dir = testing::make_hub_folder(fx, tmp.path + "/m");
  const std::string in = fx.dir + "/inputs.safetensors";
  const TensorMap chunked = autoencode(dir, in, tmp.path + "/c.safetensors", 7);
  const TensorMap whole = autoencode(dir, in, tmp.path + "/w.safetensors", int64_t{1} << 30);  // one chunk

  // Unchunked in process: decode(state) with every output point.
  auto model = testing::load_perceiver_io_folder(dir);
  autograd::NoGradGuard no_grad;
  TensorMap enc_inputs;
  for (const auto& [name, t] : fx.inputs)
    if (name.rfind("inputs.", 0) == 0) enc_inputs.emplace(name, t);
  const TensorMap full = model->decode(model->encode(enc_inputs));
  for (const char* name : {"logits.audio", "logits.image", "logits.label"}) {
    ASSERT_TRUE(chunked.count(name) && whole.count(name)) << name;
    ASSERT_TRUE(testing::same_shape(chunked.at(name), full.at(name), name));
    // 0.05 = 5e-6 absolute: chunks of different row counts may take different GEMM kernels
    // (matmul primitive vs dnnl_sgemm), which round differently
    EXPECT_LE(testing::forward_ratio(chunked.at(name), full.at(name)), 0.05) << name;
    EXPECT_LE(testing::forward_ratio(whole.at(name), full.at(name)), 0.05) << name;
  }
  EXPECT_EQ(chunked.at("logits.image").shape(), (Shape{2, 4 * 16 * 16, 3}));
  EXPECT_EQ(chunked.at("logits.audio").shape(), (Shape{2, 128}));

  // The fixture decoded a subset of points: the same rows of the full reconstruction.
  const Tensor img = rows(chunked.at("logits.image"), ints(fx.inputs.at("subsampled_output_points.image")));
  EXPECT_LE(testing::forward_ratio(img, fx.outputs.at("logits.image")), 1.0);
  const std::vector<int64_t> patches = ints(fx.inputs.at("subsampled_output_points.audio"));  // 16 samples each
  const Tensor audio = rows(chunked.at("logits.audio").reshape({2, 8, 16}), patches).reshape({2, -1});
  EXPECT_LE(testing::forward_ratio(audio, fx.outputs.at("logits.audio")), 1.0);
  EXPECT_LE(testing::forward_ratio(chunked.at("logits.label"), fx.outputs.at("logits.label")), 1.0);

  // Reconstructions in the input layouts.
  const Tensor& video = chunked.at("reconstruction.image");
  ASSERT_EQ(video.shape(), fx.inputs.at("inputs.image").shape());
  const Tensor& flat = chunked.at("logits.image");  // (B, T*H*W, 3)
  // batch 1, frame 2, channel 1, pixel (5, 9)
  EXPECT_EQ(video.f32()[(((1 * 4 + 2) * 3 + 1) * 16 + 5) * 16 + 9], flat.f32()[((1 * 4 + 2) * 256 + 5 * 16 + 9) * 3 + 1]);
  ASSERT_EQ(chunked.at("reconstruction.audio").shape(), fx.inputs.at("inputs.audio").shape());
}

TEST(HfAutoencode, ErrorsAreOneLine) {
  testing::TempDir tmp;
  const testing::HfFixture fx = testing::load_hf_fixture("multimodal-perceiver");
  const std::string dir = testing::make_hub_folder(fx, tmp.path + "/m");
  const std::string flow = testing::make_family_folder("optical-flow-perceiver", tmp.path + "/flow");
  std::vector<std::pair<std::string, Tensor>> no_audio;
  for (const auto& [name, t] : fx.inputs)
    if (name == "inputs.image" || name == "inputs.label") no_audio.emplace_back(name, t);
  io::save_safetensors(tmp.path + "/no_audio.safetensors", no_audio);
  io::save_safetensors(tmp.path + "/none.safetensors", {{"target.label", fx.inputs.at("target.label")}});
  const std::string in = fx.dir + "/inputs.safetensors", out = tmp.path + "/o.safetensors";
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const Case cases[] = {
      {{"autoencode", "--model", flow, "--inputs", in, "--outputs", out}, "expected a PerceiverForMultimodalAutoencoding model folder"},
      {{"autoencode", "--model", dir, "--inputs", tmp.path + "/none.safetensors", "--outputs", out}, "got none"},
      {{"autoencode", "--model", dir, "--inputs", tmp.path + "/no_audio.safetensors", "--outputs", out}, "inputs.audio"},
      {{"autoencode", "--model", dir, "--inputs", in, "--outputs", out, "--chunk-size", "0"}, "--chunk-size"},
      {{"autoencode", "--model", dir, "--inputs", tmp.path + "/missing.safetensors", "--outputs", out}, "--inputs"},
      {{"autoencode", "--model", dir, "--inputs", in}, "--outputs is required"},
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
