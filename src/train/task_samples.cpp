// Task::write_samples: pictures and sounds of a trained model's outputs on held-out examples
// (optical flow as colour-coded fields, the autoencoder's reconstructed clips and soundtracks).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/error.h"
#include "perceiver/data/wav.h"
#include "perceiver/io/atomic_file.h"
#include "perceiver/ops/elementwise.h"
#include "perceiver/train/task.h"

namespace perceiver::train {
namespace {

uint8_t to_byte(double v01) { return static_cast<uint8_t>(std::lround(std::clamp(v01, 0.0, 1.0) * 255.0)); }

// Pastes src at column x0 of dst (same height).
void paste(data::RgbImage& dst, const data::RgbImage& src, int64_t x0) {
  for (int64_t y = 0; y < src.height; ++y)
    std::copy_n(src.pixels.data() + y * src.width * 3, src.width * 3, dst.pixels.data() + (y * dst.width + x0) * 3);
}

// Frame f (0 or 1) of flow patch features (2, 27, h, w) in [-1, 1]: the centre of each 3 x 3 patch.
data::RgbImage frame_of_features(const float* features, int f, int64_t h, int64_t w) {
  std::vector<uint8_t> px(static_cast<size_t>(h * w * 3));
  for (int c = 0; c < 3; ++c) {
    const float* plane = features + (f * 27 + 4 * 3 + c) * h * w;  // (dy, dx) = (1, 1)
    for (int64_t i = 0; i < h * w; ++i) px[static_cast<size_t>(i * 3 + c)] = to_byte((plane[i] + 1.0) / 2.0);
  }
  return data::make_rgb_image(h, w, std::move(px));
}

std::string sample_name(const std::string& dir, int64_t i, const char* suffix) {
  char name[32];
  std::snprintf(name, sizeof name, "/sample_%02lld%s", static_cast<long long>(i), suffix);
  return dir + name;
}

void make_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  check(!ec, "[samples] cannot create the folder ", dir, ": ", ec.message());
}

}  // namespace

std::vector<std::string> Task::write_samples(const std::string& dir, int64_t count) const {
  check(count >= 0, "[samples] the number of samples must be >= 0, got ", count);
  std::vector<std::string> written;
  if (kind_ != Kind::kFlow && kind_ != Kind::kAutoencoder) return written;
  count = std::min(count, test_size_);
  if (count == 0) return written;
  autograd::NoGradGuard no_grad;
  make_dir(dir);
  for (int64_t i = 0; i < count; ++i) {
    const std::string png = sample_name(dir, i, ".png");
    if (kind_ == Kind::kFlow) {
      // frame 1 | frame 2 | ground truth | prediction, the flows on the ground truth's scale
      const int64_t h = flow_h_, w = flow_w_;
      const models::TensorMap batch = flow_batch({&flow_test_[static_cast<size_t>(i)]}, false, nullptr);
      const Tensor pred = ops::scale(forward(batch, nullptr).at("logits"), kFlowScale).reshape({h, w, 2});
      const Tensor truth = batch.at("target").reshape({h, w, 2});
      float max_flow = 1e-3f;
      for (int64_t p = 0; p < h * w; ++p) {
        const float u = truth.f32()[2 * p], v = truth.f32()[2 * p + 1];
        if (data::flow_known(u, v)) max_flow = std::max(max_flow, std::hypot(u, v));
      }
      data::RgbImage strip = data::make_rgb_image(h, 4 * w, std::vector<uint8_t>(static_cast<size_t>(h * 4 * w * 3)));
      const float* features = batch.at("inputs").f32();
      paste(strip, frame_of_features(features, 0, h, w), 0);
      paste(strip, frame_of_features(features, 1, h, w), w);
      paste(strip, data::flow_to_color(truth, max_flow), 2 * w);
      paste(strip, data::flow_to_color(pred, max_flow), 3 * w);
      data::write_png_rgb(png, strip);
      written.push_back(png);
      continue;
    }
    // autoencoder: the T input frames over their reconstructions, and both soundtracks
    const models::TensorMap batch = av_batch({&av_test_[static_cast<size_t>(i)]}, nullptr);
    const models::TensorMap out = av_decode_all(batch);
    const int64_t t = av_.frames, s = av_.size;
    const float* video = batch.at("inputs.image").f32();  // (1, T, 3, S, S)
    const float* recon = out.at("logits.image").f32();    // (1, T * S * S, 3)
    std::vector<uint8_t> px(static_cast<size_t>(2 * s * t * s * 3));
    for (int64_t f = 0; f < t; ++f)
      for (int64_t y = 0; y < s; ++y)
        for (int64_t x = 0; x < s; ++x)
          for (int c = 0; c < 3; ++c) {
            const int64_t col = f * s + x;
            px[static_cast<size_t>((y * t * s + col) * 3 + c)] = to_byte(video[((f * 3 + c) * s + y) * s + x]);
            px[static_cast<size_t>(((s + y) * t * s + col) * 3 + c)] = to_byte(recon[((f * s + y) * s + x) * 3 + c]);
          }
    data::write_png_rgb(png, data::make_rgb_image(2 * s, t * s, std::move(px)));
    written.push_back(png);
    const Tensor& audio = batch.at("inputs.audio");
    const Tensor& audio_out = out.at("logits.audio");
    for (const auto& [suffix, wave] : {std::pair<const char*, const Tensor*>{"_input.wav", &audio},
                                       std::pair<const char*, const Tensor*>{"_output.wav", &audio_out}}) {
      std::vector<float> samples(wave->f32(), wave->f32() + wave->numel());
      for (float& v : samples) v = std::clamp(v, -1.0f, 1.0f);
      const std::string path = sample_name(dir, i, suffix);
      io::write_file_atomic(path, data::encode_wav_pcm16(samples, data::kSpokenDigitRate));
      written.push_back(path);
    }
  }
  return written;
}

}  // namespace perceiver::train
