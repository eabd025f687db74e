// `perceiver run` and `perceiver grad` on hub-layout folders built from the HF fixtures give the
// reference tensors; bad configs and mismatched weights give clear errors.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "testing/shell.h"
#include "parity/hf_parity_util.h"
#include "perceiver/ops/reduce.h"

namespace perceiver {
namespace {

using models::perceiver_io::TensorMap;

using CliResult = testing::ShellResult;
using testing::run_cli;

const char* kFamilies[] = {"language-perceiver",     "vision-perceiver-learned", "vision-perceiver-fourier",
                           "vision-perceiver-conv",  "optical-flow-perceiver",   "multimodal-perceiver"};

TEST(HfCli, RunWritesTheFixtureTensors) {
  testing::TempDir tmp;
  for (const char* family : kFamilies) {
    testing::HfFixture fx = testing::load_hf_fixture(family);
    const std::string dir = testing::make_hub_folder(fx, tmp.path + "/" + family);
    const std::string out = tmp.path + "/" + family + ".out.safetensors";
    CliResult r = run_cli("run --model " + dir + " --inputs " + fx.dir + "/inputs.safetensors --outputs " + out);
    ASSERT_EQ(r.code, 0) << family << "\n" << r.out;
    const TensorMap got = io::load_safetensors(out).tensors;
    for (const auto& [name, ref] : fx.outputs) {
      ASSERT_TRUE(got.count(name)) << family << ": " << name << " not written\n" << r.out;
      ASSERT_TRUE(testing::same_shape(got.at(name), ref, std::string(family) + " " + name));
      EXPECT_LE(testing::forward_ratio(got.at(name), ref), 1.0) << family << " " << name;
    }
  }
}

TEST(HfCli, RunChunkedEqualsFull) {
  testing::TempDir tmp;
  testing::HfFixture fx = testing::load_hf_fixture("optical-flow-perceiver");
  const std::string dir = testing::make_hub_folder(fx, tmp.path + "/flow");
  const std::string out = tmp.path + "/chunked.safetensors";
  CliResult r = run_cli("run --model " + dir + " --inputs " + fx.dir + "/inputs.safetensors --chunk-size 7 --outputs " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  const TensorMap got = io::load_safetensors(out).tensors;
  ASSERT_EQ(got.size(), 1u);
  EXPECT_LE(testing::forward_ratio(got.at("logits"), fx.outputs.at("logits")), 1.0);
}

// --precision bf16: logits near the reference but not identical to fp32; a bad value is refused.
TEST(HfCli, RunBf16PrecisionAndBadPrecision) {
  testing::TempDir tmp;
  testing::HfFixture fx = testing::load_hf_fixture("vision-perceiver-fourier");
  const std::string dir = testing::make_hub_folder(fx, tmp.path + "/fourier");
  const std::string out = tmp.path + "/bf16.safetensors";
  const std::string base = "run --model " + dir + " --inputs " + fx.dir + "/inputs.safetensors --logits-only ";
  CliResult r = run_cli(base + "--precision bf16 --outputs " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  const Tensor got = io::load_safetensors(out).tensors.at("logits");
  const Tensor& ref = fx.outputs.at("logits");
  const double ratio = testing::forward_ratio(got, ref);
  EXPECT_GT(ratio, 1.0) << "bf16 logits equal fp32 to 1e-4: the bf16 path did not run";
  EXPECT_LE(testing::max_abs_diff(got, ref), 5e-2 * testing::max_abs(ref));
  r = run_cli(base + "--precision fp8 --outputs " + out);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("--precision"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fp8"), std::string::npos) << r.out;
}

TEST(HfCli, GradWritesLossAndEveryParameterGradient) {
  testing::TempDir tmp;
  for (const char* family : kFamilies) {
    testing::HfFixture fx = testing::load_hf_fixture(family);
    const std::string dir = testing::make_hub_folder(fx, tmp.path + "/" + family);
    const std::string out = tmp.path + "/" + family + ".grads.safetensors";
    CliResult r = run_cli("grad --model " + dir + " --inputs " + fx.dir + "/inputs.safetensors --outputs " + out);
    ASSERT_EQ(r.code, 0) << family << "\n" << r.out;
    const TensorMap got = io::load_safetensors(out).tensors;
    double g_max = 0;
    size_t expected = 0;
    for (const auto& [name, ref] : fx.grads)
      if (name.rfind("loss", 0) != 0 && name != "train_mode_logits" &&
          name.rfind("buffers_after_first_train_forward.", 0) != 0) {
        g_max = std::max(g_max, testing::max_abs(ref));
        ++expected;
      }
    EXPECT_EQ(got.size(), expected + 1) << family;  // + "loss"
    EXPECT_LE(testing::forward_ratio(got.at("loss"), fx.grads.at("loss")), 1.0) << family << " loss";
    for (const auto& [name, g] : got) {
      if (name == "loss") continue;
      ASSERT_TRUE(fx.grads.count(name)) << family << ": unexpected gradient " << name;
      ASSERT_TRUE(testing::same_shape(g, fx.grads.at(name), name));
      EXPECT_LE(testing::grad_ratio(g, fx.grads.at(name), g_max), 1.0) << family << " " << name;
    }
  }
}

void write_config(const std::string& dir, const nlohmann::json& cfg) {
  std::ofstream(dir + "/config.json") << cfg.dump();
}

TEST(HfCli, BadConfigsGiveClearErrors) {
  testing::TempDir tmp;
  testing::HfFixture fx = testing::load_hf_fixture("vision-perceiver-fourier");
  const std::string dir = testing::make_hub_folder(fx, tmp.path + "/m");
  const std::string run = "run --model " + dir + " --inputs " + fx.dir + "/inputs.safetensors --outputs " + tmp.path + "/o.safetensors";
  nlohmann::json good = fx.meta.at("config");
  good["architectures"] = {fx.meta.at("model_class")};

  struct Case {
    const char* key;
    nlohmann::json value;
    const char* message;
  };
  const Case cases[] = {
      {"num_latents", -3, "num_latents: expected an integer in [1, "},
      {"d_latents", "wide", "d_latents: expected an integer"},
      {"hidden_act", "relu", "hidden_act: expected \"gelu\""},
      {"cross_attention_shape_for_attention", "k", "cross_attention_shape_for_attention: expected one of \"kv\", \"q\""},
      {"num_self_attention_heads", 7, "d_latents (64) must be divisible by num_self_attention_heads (7)"},
      {"train_size", nlohmann::json::array({6}), "train_size: expected a list of 2 integers"},
      {"architectures", nlohmann::json::array({"PerceiverForTranslation"}),
       "expected one of PerceiverForMaskedLM, PerceiverForImageClassificationLearned"},
  };
  for (const Case& c : cases) {
    nlohmann::json bad = good;
    bad[c.key] = c.value;
    write_config(dir, bad);
    CliResult r = run_cli(run);
    EXPECT_EQ(r.code, 1) << c.key << "\n" << r.out;
    EXPECT_NE(r.out.find("perceiver: error: [hf_config] " + dir + "/config.json: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << c.key << "\n" << r.out;
  }
  // A config whose sizes disagree with the weights: every mismatch in one error.
  nlohmann::json wider = good;
  wider["num_latents"] = 17;
  write_config(dir, wider);
  CliResult r = run_cli(run);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("perceiver.embeddings.latents (expected float32[17, 64], got float32[16, 64])"), std::string::npos)
      << r.out;
  // A different task class: the missing and unexpected names are listed together.
  nlohmann::json learned = good;
  learned["architectures"] = {"PerceiverForImageClassificationLearned"};
  write_config(dir, learned);
  r = run_cli(run);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("missing (5):"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("perceiver.input_preprocessor.convnet_1x1.weight"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("shape/dtype mismatch"), std::string::npos) << r.out;
  // No config at all; no weights.
  std::filesystem::remove(dir + "/config.json");
  EXPECT_NE(run_cli(run).out.find("expected a config.json"), std::string::npos);
  write_config(dir, good);
  std::filesystem::remove(dir + "/model.safetensors");
  EXPECT_NE(run_cli(run).out.find("model.safetensors"), std::string::npos);
}

TEST(HfCli, WrongInputsGiveClearErrors) {
  testing::TempDir tmp;
  testing::HfFixture fx = testing::load_hf_fixture("optical-flow-perceiver");
  const std::string dir = testing::make_hub_folder(fx, tmp.path + "/m");
  // Frames of another size than train_size: the flow output cannot be reshaped.
  const std::string in = tmp.path + "/in.safetensors";
  io::save_safetensors(in, {{"inputs", Tensor::zeros({1, 2, 27, 4, 10})}});
  CliResult r = run_cli("run --model " + dir + " --inputs " + in + " --outputs " + tmp.path + "/o.safetensors");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("the frames must be exactly train_size"), std::string::npos) << r.out;
  io::save_safetensors(in, {{"pixels", Tensor::zeros({1, 2, 27, 6, 10})}});
  r = run_cli("run --model " + dir + " --inputs " + in + " --outputs " + tmp.path + "/o.safetensors");
  EXPECT_NE(r.out.find("missing input 'inputs', got inputs: pixels"), std::string::npos) << r.out;
  r = run_cli("grad --model " + dir + " --inputs " + fx.dir + "/outputs.safetensors --outputs " + tmp.path + "/o.safetensors");
  EXPECT_EQ(r.code, 1) << r.out;
}

// NaN/Inf at the command boundary: inputs and weights with NaN are errors naming the tensor;
// --allow-nonfinite lets them through, and the NaN then reaches the outputs (never hidden).
TEST(HfCli, NonFiniteInputsWeightsAndOutputsAreErrors) {
  testing::TempDir tmp;
  testing::HfFixture fx = testing::load_hf_fixture("vision-perceiver-fourier");
  const std::string dir = testing::make_hub_folder(fx, tmp.path + "/m");
  TensorMap inputs = fx.inputs;
  Tensor pixels = inputs.at("inputs").clone();
  pixels.f32()[5] = std::nanf("");
  inputs["inputs"] = pixels;
  const std::string in = tmp.path + "/nan.safetensors", out = tmp.path + "/o.safetensors";
  io::save_safetensors(in, std::vector<std::pair<std::string, Tensor>>(inputs.begin(), inputs.end()));
  for (const char* cmd : {"run", "grad"}) {
    CliResult r = run_cli(std::string(cmd) + " --model " + dir + " --inputs " + in + " --outputs " + out);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("[" + std::string(cmd) + "] " + in + ": input 'inputs' holds 1 non-finite value "
                         "(first: nan at element 5); pass --allow-nonfinite"),
              std::string::npos) << r.out;
    EXPECT_FALSE(std::filesystem::exists(out)) << cmd;
    r = run_cli(std::string(cmd) + " --model " + dir + " --inputs " + in + " --outputs " + out + " --allow-nonfinite");
    EXPECT_EQ(r.code, 0) << r.out;
    const TensorMap got = io::load_safetensors(out).tensors;
    const Tensor& t = got.at(std::string(cmd) == "run" ? "logits" : "loss");
    EXPECT_GT(ops::count_nonfinite(t).count, 0) << cmd << ": the NaN input must reach " << (std::string(cmd) == "run" ? "logits" : "loss");
    std::filesystem::remove(out);
  }
  // A weight with an Inf: refused when loading, naming the parameter.
  TensorMap weights = io::load_safetensors(dir + "/model.safetensors").tensors;
  const std::string name = weights.begin()->first;
  Tensor w = weights.begin()->second.clone();
  w.f32()[0] = std::numeric_limits<float>::infinity();
  weights[name] = w;
  io::save_safetensors(dir + "/model.safetensors", std::vector<std::pair<std::string, Tensor>>(weights.begin(), weights.end()));
  CliResult r = run_cli("run --model " + dir + " --inputs " + fx.dir + "/inputs.safetensors --outputs " + out);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("weight '" + name + "' holds 1 non-finite value (first: inf at element 0)"), std::string::npos) << r.out;
}

// A hub config.json with in-range but enormous sizes is refused before the model is allocated.
TEST(HfCli, EnormousConfigIsRefusedBeforeAllocating) {
  testing::TempDir tmp;
  testing::HfFixture fx = testing::load_hf_fixture("vision-perceiver-fourier");
  const std::string dir = testing::make_hub_folder(fx, tmp.path + "/m");
  nlohmann::json cfg = fx.meta.at("config");
  cfg["architectures"] = {fx.meta.at("model_class")};
  cfg["num_latents"] = 1 << 20;
  cfg["d_latents"] = 1 << 20;  // 4 TiB of latents
  write_config(dir, cfg);
  CliResult r = run_cli("run --model " + dir + " --inputs " + fx.dir + "/inputs.safetensors --outputs " + tmp.path + "/o");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("[memory] building the model of " + dir + "/config.json needs more than"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace perceiver
