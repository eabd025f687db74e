// Subsampled and chunked decoding for every decoder kind: decoding a subset of output positions
// gives the matching rows of the full decoding, and decoding everything in chunks of any size
// gives the full result (masked LM, classification, optical flow, multimodal).
#include "parity/hf_parity_util.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/autograd/grad_mode.h"

namespace perceiver {
namespace {

using models::perceiver_io::EncoderState;
using models::perceiver_io::OutputPoints;
using models::perceiver_io::PerceiverIO;
using models::perceiver_io::TensorMap;

std::unique_ptr<PerceiverIO> load(const std::string& family, const testing::TempDir& tmp, testing::HfFixture& fx) {
  fx = testing::load_hf_fixture(family);
  return testing::load_perceiver_io_folder(testing::make_hub_folder(fx, tmp.path + "/" + family));
}

// Rows `idx` of axis 1 of t (B, O, ...).
Tensor rows(const Tensor& t, const std::vector<int64_t>& idx) {
  Shape s = t.shape();
  const int64_t inner = t.numel() / (s[0] * s[1]);
  Shape o = s;
  o[1] = static_cast<int64_t>(idx.size());
  Tensor out = Tensor::empty(o);
  for (int64_t b = 0; b < s[0]; ++b)
    for (size_t j = 0; j < idx.size(); ++j)
      for (int64_t c = 0; c < inner; ++c)
        out.f32()[(b * o[1] + j) * inner + c] = t.f32()[(b * s[1] + idx[j]) * inner + c];
  return out;
}

// Decoding is independent per query; only GEMM blocking differs between chunkings.
void expect_close(const Tensor& got, const Tensor& ref, const std::string& what) {
  ASSERT_TRUE(testing::same_shape(got, ref, what));
  EXPECT_LE(testing::max_abs_diff(got, ref), 1e-5 * std::max(1.0, testing::max_abs(ref))) << what;
}

TEST(HfDecoding, MaskedLMSubsetAndChunks) {
  testing::TempDir tmp;
  testing::HfFixture fx;
  auto model = load("language-perceiver", tmp, fx);
  autograd::NoGradGuard no_grad;
  EncoderState state = model->encode(fx.inputs);
  const Tensor full = model->decode(state).at("logits");  // (B, 64, V)
  const std::vector<int64_t> pick = {63, 0, 17, 5};
  expect_close(model->decode(state, {{"", pick}}).at("logits"), rows(full, pick), "subset");
  for (int64_t chunk : {1, 7, 64, 1000}) expect_close(model->decode_chunked(state, chunk).at("logits"), full, "chunked");
}

TEST(HfDecoding, ClassificationChunks) {
  testing::TempDir tmp;
  testing::HfFixture fx;
  auto model = load("vision-perceiver-fourier", tmp, fx);
  autograd::NoGradGuard no_grad;
  EncoderState state = model->encode(fx.inputs);
  const Tensor full = model->decode(state).at("logits");
  expect_close(model->decode(state, {{"", {0}}}).at("logits"), full, "subset");
  expect_close(model->decode_chunked(state, 1).at("logits"), full, "chunked");
}

TEST(HfDecoding, OpticalFlowSubsetAndChunks) {
  testing::TempDir tmp;
  testing::HfFixture fx;
  auto model = load("optical-flow-perceiver", tmp, fx);
  autograd::NoGradGuard no_grad;
  EncoderState state = model->encode(fx.inputs);
  const Tensor full = model->decode(state).at("logits");  // (B, H, W, 2)
  const Tensor flat = full.reshape({full.dim(0), full.dim(1) * full.dim(2), full.dim(3)});
  const std::vector<int64_t> pick = {59, 3, 30, 31};
  expect_close(model->decode(state, {{"", pick}}).at("logits"), rows(flat, pick), "subset");
  for (int64_t chunk : {1, 8, 59, 60}) expect_close(model->decode_chunked(state, chunk).at("logits"), full, "chunked");
}

TEST(HfDecoding, MultimodalSubsetAndChunks) {
  testing::TempDir tmp;
  testing::HfFixture fx;
  auto model = load("multimodal-perceiver", tmp, fx);
  autograd::NoGradGuard no_grad;
  EncoderState state = model->encode(fx.inputs);
  // Every output point of every modality at once (audio patches, video pixels, the label).
  const TensorMap full = model->decode(state);
  const int64_t audio = model->perceiver().decoder().num_outputs("audio", state);
  const int64_t image = model->perceiver().decoder().num_outputs("image", state);
  ASSERT_EQ(full.at("logits.audio").dim(1), audio * model->config().samples_per_patch);
  ASSERT_EQ(full.at("logits.image").dim(1), image);
  // The fixture's subsampled points are rows of the full decoding.
  const TensorMap sub = model->forward(fx.inputs);
  const OutputPoints pts = model->output_points_from_inputs(fx.inputs);
  expect_close(sub.at("logits.image"), rows(full.at("logits.image"), pts.at("image")), "image subset");
  const Tensor audio_full = full.at("logits.audio").reshape({2, audio, model->config().samples_per_patch});
  const Tensor audio_sub = sub.at("logits.audio").reshape({2, -1, model->config().samples_per_patch});
  expect_close(audio_sub, rows(audio_full, pts.at("audio")), "audio subset");
  expect_close(sub.at("logits.label"), full.at("logits.label"), "label");
  // Only one modality decoded.
  TensorMap only_image = model->decode(state, {{"audio", {}}, {"label", {}}, {"image", {5, 1}}});
  EXPECT_EQ(only_image.size(), 1u);
  expect_close(only_image.at("logits.image"), rows(full.at("logits.image"), {5, 1}), "image only");
  // Chunks straddling modality boundaries.
  for (int64_t chunk : {5, 100, 1 << 20}) {
    const TensorMap chunked = model->decode_chunked(state, chunk);
    ASSERT_EQ(chunked.size(), 3u);
    for (const auto& [name, t] : full) expect_close(chunked.at(name), t, name + " chunked");
  }
}

}  // namespace
}  // namespace perceiver
