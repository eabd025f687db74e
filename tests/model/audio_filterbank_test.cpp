// The mel-spaced Gabor filterbank that starts the Perceiver classifier's log_power front end, and
// the fixed (buffer) input projection: response to sinusoids, phase invariance, mel spacing,
// config validation, names and training behaviour; per-utterance mean normalisation and
// SpecAugment masks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/core/error.h"
#include "perceiver/models/audio_filterbank.h"
#include "perceiver/models/perceiver.h"
#include "perceiver/ops/elementwise.h"
#include "perceiver/optim/optimizer.h"
#include "perceiver/train/checkpoint.h"
#include "testing/tiny_data.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

constexpr double kPi = 3.14159265358979323846;

// mean of the squared cos/sin responses of filter k to `x`
double pair_power(const std::vector<float>& w, int64_t frame, int64_t k, const std::vector<double>& x) {
  double c = 0.0, s = 0.0;
  for (int64_t n = 0; n < frame; ++n) {
    c += w[static_cast<size_t>(2 * k * frame + n)] * x[static_cast<size_t>(n)];
    s += w[static_cast<size_t>((2 * k + 1) * frame + n)] * x[static_cast<size_t>(n)];
  }
  return 0.5 * (c * c + s * s);
}

std::vector<double> sinusoid(int64_t frame, double hz, double rate, double amplitude, double phase) {
  std::vector<double> x(static_cast<size_t>(frame));
  for (int64_t n = 0; n < frame; ++n) x[static_cast<size_t>(n)] = amplitude * std::cos(2 * kPi * hz * n / rate + phase);
  return x;
}

TEST(MelGaborFilterbank, RespondsToItsCentreFrequencyWhateverThePhase) {
  const int64_t frame = 256, filters = 32;
  const double rate = 8000.0;
  std::vector<float> w(static_cast<size_t>(2 * filters * frame));
  models::mel_gabor_filterbank(frame, filters, rate, w.data());
  const double lo = 2595.0 * std::log10(1.0 + 60.0 / 700.0), hi = 2595.0 * std::log10(1.0 + 3800.0 / 700.0);
  double previous_centre = 0.0;
  for (int64_t k = 0; k < filters; ++k) {
    const double mel = lo + (hi - lo) * (k + 1) / (filters + 1);
    const double centre = 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0);
    EXPECT_GT(centre, previous_centre);
    previous_centre = centre;
    // amplitude 0.5 at the centre: power A^2 / 2 = 0.125 for every phase (within the window's ripple)
    for (double phase : {0.0, 0.7, 1.9, 3.0}) {
      const double p = pair_power(w, frame, k, sinusoid(frame, centre, rate, 0.5, phase));
      EXPECT_NEAR(p, 0.125, 0.125 * 0.05) << "filter " << k << " at " << centre << " Hz, phase " << phase;
    }
    // a tone a quarter of the band away from the filter's neighbours answers far less
    const double far = centre < 1000.0 ? centre * 2.0 : centre / 2.0;
    EXPECT_LT(pair_power(w, frame, k, sinusoid(frame, far, rate, 0.5, 0.3)), 0.125 * 0.1) << "filter " << k;
  }
}

models::PerceiverConfig audio_config() {
  models::PerceiverConfig c;
  c.image_size = {9};
  c.max_resolution = {9};
  c.in_channels = 64;
  c.input_projection = 8;
  c.input_projection_type = "log_power";
  c.input_projection_init = "mel";
  c.num_fourier_bands = 4;
  c.num_latents = 4;
  c.d_latents = 16;
  c.self_attention_heads = 2;
  c.self_attends_per_block = 1;
  c.num_classes = 3;
  return c;
}

TEST(MelGaborFilterbank, ConfigNeedsALogPowerProjection) {
  nlohmann::json j = audio_config().to_json();
  EXPECT_NO_THROW(models::parse_perceiver_config(j));
  j["input_projection_type"] = "gelu";
  EXPECT_THROW(
      {
        try {
          models::parse_perceiver_config(j);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("input_projection_init \"mel\" needs"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);
}

TEST(MelGaborFilterbank, FixedProjectionIsABufferUnderTheSameNameAndStaysPut) {
  models::PerceiverConfig c = audio_config();
  std::vector<float> expected(static_cast<size_t>(2 * c.input_projection * c.in_channels));
  models::mel_gabor_filterbank(c.in_channels, c.input_projection, c.sample_rate, expected.data());
  c.input_projection_trainable = false;
  models::Perceiver fixed(c, 1);
  for (const auto& p : fixed.named_parameters())
    EXPECT_EQ(p.first.find("input_preprocessor"), std::string::npos) << p.first << " should not be trained";
  auto find = [](models::Perceiver& m, const std::string& name) {
    for (const auto& [n, t] : m.state_dict())
      if (n == name) return t;
    ADD_FAILURE() << name << " missing from the state dict";
    return Tensor::zeros({1});
  };
  const Tensor w = find(fixed, "perceiver.input_preprocessor.projection.weight");
  ASSERT_EQ(w.shape(), (Shape{2 * c.input_projection, c.in_channels}));
  for (size_t i = 0; i < expected.size(); ++i) ASSERT_EQ(w.f32()[i], expected[i]) << i;
  // a few optimizer steps move the model but not the filterbank
  Tensor x = testing::randn({4, 9, 64}, 2);
  Tensor y = Tensor::from_vector_i32({4}, {0, 1, 2, 0});
  auto opt = optim::make_optimizer("adamw", fixed.named_parameters(), optim::OptimizerOptions{});
  for (int step = 0; step < 3; ++step) {
    Tensor loss = ag::cross_entropy(fixed.forward(x), y, 0.0f);
    opt->zero_grad();
    autograd::backward(loss);
    opt->step(1e-2f);
  }
  for (size_t i = 0; i < expected.size(); ++i) ASSERT_EQ(w.f32()[i], expected[i]) << i;
  // checkpoints hold the buffers too: a fresh model loads the file strictly and gives the same logits
  testing::TempDir tmp;
  train::RunConfig rc;
  rc.model = c.to_json();
  train::save_checkpoint(tmp.path + "/ckpt.safetensors", fixed, nullptr, 3, rc);
  const train::Checkpoint ck = train::read_checkpoint(tmp.path + "/ckpt.safetensors");
  ASSERT_TRUE(ck.params.count("perceiver.input_preprocessor.projection.weight"));
  models::Perceiver reloaded(c, 99);
  reloaded.load_state_dict(ck.params, "checkpoint");
  fixed.train(false);
  reloaded.train(false);
  EXPECT_EQ(fixed.forward(x).to_vector(), reloaded.forward(x).to_vector());
  // the trainable variant starts from the same filters, under the same names
  c.input_projection_trainable = true;
  models::Perceiver trainable(c, 1);
  const Tensor tw = find(trainable, "perceiver.input_preprocessor.projection.weight");
  for (size_t i = 0; i < expected.size(); ++i) ASSERT_EQ(tw.f32()[i], expected[i]) << i;
}

// Centring the log-mel features over time removes a recording's gain: log(g^2 P) = log P + log g^2
// in every channel (up to the 1e-4 floor), so 3x the waveform gives the same logits; without the
// centring it does not.
TEST(AudioFrontEnd, MeanNormalizationRemovesTheGain) {
  models::PerceiverConfig c = audio_config();
  // loud enough that the 1e-4 floor is negligible next to every filter's power
  Tensor x = ops::scale(testing::randn({3, 9, 64}, 7), 30.0f);
  Tensor x3 = ops::scale(x, 3.0f);
  auto max_diff = [](const Tensor& a, const Tensor& b) {
    float d = 0;
    for (int64_t i = 0; i < a.numel(); ++i) d = std::max(d, std::fabs(a.f32()[i] - b.f32()[i]));
    return d;
  };
  models::Perceiver plain(c, 4);
  plain.train(false);
  EXPECT_GT(max_diff(plain.forward(x), plain.forward(x3)), 1e-2f) << "the gain should show without normalisation";
  c.input_mean_normalization = true;
  models::Perceiver centred(c, 4);
  centred.train(false);
  EXPECT_LT(max_diff(centred.forward(x), centred.forward(x3)), 2e-4f);
  // the gradient reaches a trainable filterbank through the centring
  centred.train(true);
  Tensor loss = ag::cross_entropy(centred.forward(x), Tensor::from_vector_i32({3}, {0, 1, 2}), 0.0f);
  autograd::backward(loss);
  for (const auto& [name, p] : centred.named_parameters())
    if (name == "perceiver.input_preprocessor.projection.weight") {
      double g2 = 0;
      for (float v : p.grad().to_vector()) g2 += static_cast<double>(v) * v;
      EXPECT_GT(g2, 0.0) << name;
    }
}

TEST(AudioFrontEnd, SpecAugmentMaskHasAtMostTheDrawnBandsAndSpans) {
  Rng rng(5);
  const int64_t b = 40, m = 31, f = 13;
  Tensor mask = models::spec_augment_mask(b, m, f, 2, 4, 3, 6, rng);
  ASSERT_EQ(mask.shape(), (Shape{b, m, f}));
  int64_t zeros = 0;
  for (int64_t e = 0; e < b; ++e) {
    const float* p = mask.f32() + e * m * f;
    // a channel is masked in a band (all elements) or partly by spans; an element likewise
    int64_t full_channels = 0, full_elements = 0;
    for (int64_t k = 0; k < f; ++k) {
      bool all = true;
      for (int64_t t = 0; t < m; ++t) all = all && p[t * f + k] == 0.0f;
      full_channels += all;
    }
    for (int64_t t = 0; t < m; ++t) {
      bool all = true;
      for (int64_t k = 0; k < f; ++k) all = all && p[t * f + k] == 0.0f;
      full_elements += all;
    }
    EXPECT_LE(full_channels, 2 * 4) << "example " << e;
    EXPECT_LE(full_elements, 3 * 6) << "example " << e;
    // every zero lies in a fully masked channel or element; every other value is exactly 1
    for (int64_t t = 0; t < m; ++t)
      for (int64_t k = 0; k < f; ++k) {
        const float v = p[t * f + k];
        ASSERT_TRUE(v == 0.0f || v == 1.0f);
        if (v == 0.0f) {
          ++zeros;
          bool channel = true, element = true;
          for (int64_t u = 0; u < m; ++u) channel = channel && p[u * f + k] == 0.0f;
          for (int64_t j = 0; j < f; ++j) element = element && p[t * f + j] == 0.0f;
          ASSERT_TRUE(channel || element) << "stray zero at example " << e << " (" << t << ", " << k << ")";
        }
      }
  }
  EXPECT_GT(zeros, 0);  // 40 examples x 5 draws: some are wider than 0
  EXPECT_THROW(models::spec_augment_mask(1, m, f, 1, f + 1, 0, 0, rng), Error);
}

// Mean and variance normalisation makes the model blind to any per-channel affine map of its
// features, a * x + b with a > 0 (a channel's offset and dynamic range); mean normalisation alone
// sees the scale. Raw features (no projection) so the map can be applied directly.
TEST(AudioFrontEnd, VarianceNormalizationRemovesEachChannelsScale) {
  models::PerceiverConfig c = audio_config();
  c.in_channels = 5;
  c.input_projection = 0;
  c.input_projection_type = "gelu";
  c.input_projection_init = "random";
  c.input_mean_normalization = true;
  Tensor x = testing::randn({3, 9, 5}, 9);
  Tensor y = x.clone();
  for (int64_t i = 0; i < y.numel(); ++i) {
    const int64_t ch = i % 5;
    y.f32()[i] = (0.2f + 1.7f * static_cast<float>(ch)) * y.f32()[i] + 3.0f - static_cast<float>(ch);
  }
  auto max_diff = [](const Tensor& a, const Tensor& b) {
    float d = 0;
    for (int64_t i = 0; i < a.numel(); ++i) d = std::max(d, std::fabs(a.f32()[i] - b.f32()[i]));
    return d;
  };
  models::Perceiver centred(c, 4);
  centred.train(false);
  EXPECT_GT(max_diff(centred.forward(x), centred.forward(y)), 1e-2f) << "the scale should show with centring only";
  c.input_variance_normalization = true;
  models::Perceiver standardized(c, 4);
  standardized.train(false);
  EXPECT_LT(max_diff(standardized.forward(x), standardized.forward(y)), 1e-3f);  // rounding of values up to ~10
  // and it trains: gradients reach the encoder through the standardisation
  standardized.train(true);
  Rng rng(1);
  Tensor loss = ag::cross_entropy(standardized.forward(x, &rng), Tensor::from_vector_i32({3}, {0, 1, 2}), 0.0f);
  autograd::backward(loss);
  double g2 = 0;
  for (const auto& [name, p] : standardized.named_parameters())
    if (p.grad().defined())
      for (float v : p.grad().to_vector()) g2 += static_cast<double>(v) * v;
  EXPECT_GT(g2, 0.0);
  // config round trip, and variance without mean is refused
  nlohmann::json j = c.to_json();
  EXPECT_TRUE(models::parse_perceiver_config(j).input_variance_normalization);
  j["input_mean_normalization"] = false;
  try {
    models::parse_perceiver_config(j);
    ADD_FAILURE() << "accepted variance normalisation without the mean one";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("input_variance_normalization needs input_mean_normalization"),
              std::string::npos)
        << e.what();
  }
}

TEST(AudioFrontEnd, MasksApplyInTrainingOnlyAndAreValidated) {
  models::PerceiverConfig c = audio_config();
  c.input_mean_normalization = true;
  models::Perceiver plain(c, 4);
  c.channel_masks = 2;
  c.channel_mask_width = 3;
  c.element_masks = 1;
  c.element_mask_width = 4;
  models::Perceiver masked(c, 4);  // same parameters: masking draws nothing at construction
  Tensor x = testing::randn({6, 9, 64}, 8);
  Rng r1(3), r2(3), r3(4);
  const auto a = masked.forward(x, &r1).to_vector(), a2 = masked.forward(x, &r2).to_vector();
  EXPECT_EQ(a, a2) << "the same seed draws the same masks";
  EXPECT_NE(a, plain.forward(x, &r3).to_vector()) << "training masks should change the logits";
  EXPECT_THROW(masked.forward(x), Error);  // training needs an Rng to draw masks
  plain.train(false);
  masked.train(false);
  EXPECT_EQ(masked.forward(x).to_vector(), plain.forward(x).to_vector()) << "no masks in evaluation";

  nlohmann::json j = c.to_json();
  EXPECT_NO_THROW(models::parse_perceiver_config(j));
  auto expect_error = [](nlohmann::json bad, const std::string& needle) {
    try {
      models::parse_perceiver_config(bad);
      ADD_FAILURE() << "accepted " << bad.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  nlohmann::json bad = j;
  bad["channel_mask_width"] = 9;  // input_projection is 8
  expect_error(bad, "channel_mask_width = 9 exceeds the feature width");
  bad = j;
  bad["element_mask_width"] = 10;  // 9 frames
  expect_error(bad, "element_mask_width = 10 exceeds the number of input elements");
  bad = j;
  bad["element_mask_width"] = 0;
  expect_error(bad, "masking needs both a count and a width");
  bad = j;
  bad["image_size"] = {1};
  bad["max_resolution"] = {1};
  bad["element_masks"] = 0;
  bad["element_mask_width"] = 0;
  expect_error(bad, "input_mean_normalization needs more than one input element");
}

}  // namespace
}  // namespace perceiver
