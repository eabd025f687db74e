// bf16 inference (core/precision.h) on the Hugging Face fixtures: for the six Perceiver IO
// families and ViT, the bf16 logits stay within a bf16-sized error of the transformers fp32
// reference (relative RMS error <= 2%, max error <= 5% of max|ref|), they differ from the fp32
// logits (the bf16 path really ran), switching back to f32 restores the exact fp32 outputs,
// reloading weights refreshes the bf16 copies, and a bf16 forward with gradients on throws.
// The figures are printed (docs/BENCHMARKS.md, bf16 accuracy).
#include <cstdio>

#include "parity/hf_parity_util.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/models/vit/vit.h"

namespace perceiver {
namespace {

using models::perceiver_io::PerceiverIO;
using models::perceiver_io::TensorMap;

struct ErrorStats {
  double rel_rms = 0, rel_max = 0;
};

// |got - ref| relative to the reference: RMS error / RMS ref, max error / max|ref|.
ErrorStats error_stats(const Tensor& got, const Tensor& ref) {
  const std::vector<float> g = got.to_vector(), r = ref.to_vector();
  double se = 0, sr = 0, me = 0, mr = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double d = double(g[i]) - double(r[i]);
    se += d * d;
    sr += double(r[i]) * r[i];
    me = std::max(me, std::fabs(d));
    mr = std::max(mr, std::fabs(double(r[i])));
  }
  return {std::sqrt(se / std::max(sr, 1e-30)), me / std::max(mr, 1e-30)};
}

TensorMap logits_of(PerceiverIO& model, const TensorMap& inputs) {
  autograd::NoGradGuard no_grad;
  TensorMap out = model.forward(inputs), logits;
  for (const auto& [name, t] : out)
    if (name.rfind("logits", 0) == 0) logits[name] = t;
  return logits;
}

void check_bf16_family(const std::string& family) {
  testing::HfFixture fx = testing::load_hf_fixture(family);
  testing::TempDir tmp;
  std::unique_ptr<PerceiverIO> model =
      testing::load_perceiver_io_folder(testing::make_hub_folder(fx, tmp.path + "/" + family));
  const TensorMap f32 = logits_of(*model, fx.inputs);
  model->set_precision(Precision::kBF16);
  const TensorMap bf16 = logits_of(*model, fx.inputs);
  ASSERT_FALSE(bf16.empty());
  for (const auto& [name, got] : bf16) {
    const Tensor& ref = fx.outputs.at(name);
    ASSERT_TRUE(testing::same_shape(got, ref, family + " " + name));
    const ErrorStats e = error_stats(got, ref), e32 = error_stats(f32.at(name), ref);
    std::printf("[ %s %s ] bf16 vs transformers fp32: rel RMS %.2e, max/max|ref| %.2e "
                "(our f32: %.1e, %.1e)\n", family.c_str(), name.c_str(), e.rel_rms, e.rel_max,
                e32.rel_rms, e32.rel_max);
    EXPECT_LE(e.rel_rms, 2e-2) << family << " " << name;
    EXPECT_LE(e.rel_max, 5e-2) << family << " " << name;
    EXPECT_NE(got.to_vector(), f32.at(name).to_vector()) << family << " " << name << ": bf16 path not taken";
  }
  // with gradients on, bf16 is mixed precision (fp32 master weights rounded per call): the same
  // products, so the same logits as the inference path's bf16 copies
  {
    TensorMap out = model->forward(fx.inputs);
    for (const auto& [name, t] : bf16) EXPECT_EQ(out.at(name).to_vector(), t.to_vector()) << family << " " << name;
  }
  // back to f32: bit-identical to before
  model->set_precision(Precision::kF32);
  const TensorMap again = logits_of(*model, fx.inputs);
  for (const auto& [name, t] : f32) EXPECT_EQ(again.at(name).to_vector(), t.to_vector()) << family << " " << name;
  // weights stored in bf16 (no fp32 master) cannot be trained: a forward with gradients is refused
  model->set_precision(Precision::kBF16, /*keep_f32_weights=*/false);
  EXPECT_THROW(model->forward(fx.inputs), Error) << family;
}

TEST(HfBf16, LanguagePerceiver) { check_bf16_family("language-perceiver"); }
TEST(HfBf16, VisionPerceiverFourier) { check_bf16_family("vision-perceiver-fourier"); }
TEST(HfBf16, VisionPerceiverLearned) { check_bf16_family("vision-perceiver-learned"); }
TEST(HfBf16, OpticalFlowPerceiver) { check_bf16_family("optical-flow-perceiver"); }
TEST(HfBf16, VisionPerceiverConv) { check_bf16_family("vision-perceiver-conv"); }
TEST(HfBf16, MultimodalPerceiver) { check_bf16_family("multimodal-perceiver"); }

// The ViT fixture: its tensors, its state dict, the model built from them and its input.
class HfBf16Vit : public ::testing::Test {
 protected:
  testing::HfFixture fx = testing::load_hf_fixture("vit");
  std::map<std::string, Tensor> state = io::load_safetensors(fx.dir + "/model.safetensors").tensors;
  std::unique_ptr<models::ViT> model = testing::model_from_state<models::ViT>(fx.meta, state, "vit fixture");
  const Tensor& pixels = fx.inputs.at("pixel_values");
};

TEST_F(HfBf16Vit, ViT) {
  autograd::NoGradGuard no_grad;
  const Tensor f32 = model->forward_pixels(pixels);
  model->set_precision(Precision::kBF16);
  const Tensor bf16 = model->forward_pixels(pixels);
  const ErrorStats e = error_stats(bf16, fx.outputs.at("logits"));
  std::printf("[ vit logits ] bf16 vs transformers fp32: rel RMS %.2e, max/max|ref| %.2e\n", e.rel_rms,
              e.rel_max);
  EXPECT_LE(e.rel_rms, 2e-2);
  EXPECT_LE(e.rel_max, 5e-2);
  EXPECT_NE(bf16.to_vector(), f32.to_vector());
}

// The bf16 weight copies follow a reload: load other weights while in bf16, and the bf16 output
// must follow the new weights (stale copies would reproduce the old output).
TEST_F(HfBf16Vit, ReloadRefreshesBf16Copies) {
  autograd::NoGradGuard no_grad;
  model->set_precision(Precision::kBF16);
  const Tensor before = model->forward_pixels(pixels);
  std::map<std::string, Tensor> scaled;
  for (const auto& [name, t] : state) {
    Tensor c = t.clone();
    if (name.find("attention.attention.query.weight") != std::string::npos) {
      float* p = c.f32();
      for (int64_t i = 0; i < c.numel(); ++i) p[i] *= 3.0f;
    }
    scaled[name] = c;
  }
  model->load_state_dict(scaled, "scaled weights");
  const Tensor after_bf16 = model->forward_pixels(pixels);
  model->set_precision(Precision::kF32);
  const Tensor after_f32 = model->forward_pixels(pixels);
  EXPECT_NE(after_bf16.to_vector(), before.to_vector());
  const ErrorStats e = error_stats(after_bf16, after_f32);
  EXPECT_LE(e.rel_rms, 2e-2) << "bf16 output does not follow the reloaded weights";
}

// Inference-only bf16 (keep_f32_weights = false, what the CLI uses): the Linear weight
// parameters themselves become bfloat16, the logits equal those of the copy mode bit for bit,
// loading fp32 weights into them is refused, and switching back to f32 widens them.
TEST_F(HfBf16Vit, ReplacingWeightsEqualsCopyMode) {
  autograd::NoGradGuard no_grad;
  model->set_precision(Precision::kBF16);
  const Tensor copy_mode = model->forward_pixels(pixels);
  model->set_precision(Precision::kF32);
  const Tensor f32 = model->forward_pixels(pixels);
  model->set_precision(Precision::kBF16, /*keep_f32_weights=*/false);
  int bf16_params = 0;
  model->visit_parameters([&](const std::string& name, Tensor& p) {
    bf16_params += p.dtype() == DType::kBF16;
    if (p.dtype() == DType::kBF16) EXPECT_NE(name.find("weight"), std::string::npos) << name;
  });
  EXPECT_GE(bf16_params, 6) << "the Linear weights were not replaced";
  EXPECT_EQ(model->forward_pixels(pixels).to_vector(), copy_mode.to_vector());
  try {
    model->load_state_dict(state, "fp32 weights");
    ADD_FAILURE() << "loading fp32 weights into bf16 parameters must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bfloat16"), std::string::npos) << e.what();
  }
  model->set_precision(Precision::kF32);
  model->visit_parameters([](const std::string& name, Tensor& p) { EXPECT_EQ(p.dtype(), DType::kF32) << name; });
  const ErrorStats e = error_stats(model->forward_pixels(pixels), f32);
  EXPECT_GT(e.rel_rms, 0.0) << "widened bf16 weights cannot equal the fp32 originals";
  EXPECT_LE(e.rel_rms, 2e-2);
}

}  // namespace
}  // namespace perceiver
