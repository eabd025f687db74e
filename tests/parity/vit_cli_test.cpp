// `perceiver run`, `perceiver grad` and `perceiver classify` on a Hugging Face ViT model folder
// built from the vit fixture (hub layout: config.json with model_type "vit" + model.safetensors or
// pytorch_model.bin): the fixture's outputs, loss and gradients (README section 4 criteria), an
// input of another size (bicubic position interpolation), top-k labels, and clear errors.
#include <cstdio>

#include "io/torch_bin_util.h"
#include "parity/hf_task_cli_util.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/random.h"
#include "perceiver/data/image_processor.h"
#include "perceiver/models/vit/vit.h"
#include "perceiver/ops/activation.h"

namespace perceiver {
namespace {

using testing::run_perceiver;
using TensorMap = std::map<std::string, Tensor>;

// A hub-layout folder of the vit fixture: {"architectures": ["ViTForImageClassification"],
// "model_type": "vit", ...} + model.safetensors.
std::string make_vit_folder(const std::string& dir) {
  return testing::make_family_folder("vit", dir, {{"model_type", "vit"}});
}

std::unique_ptr<models::ViT> load_in_process(const std::string& dir) {
  return testing::model_from_state<models::ViT>(read_json_file(dir + "/config.json"),
                                  io::load_safetensors(dir + "/model.safetensors").tensors, "model.safetensors");
}

std::string image(const std::string& name) {
  return std::string(PERCEIVER_SOURCE_DIR) + "/tests/data/hf/preprocessing/images/" + name;
}

TEST(ViTCli, RunWritesTheFixtureTensors) {
  testing::TempDir tmp;
  const testing::HfFixture fx = testing::load_hf_fixture("vit");
  const std::string dir = make_vit_folder(tmp.path + "/vit");
  const std::string out = tmp.path + "/out.safetensors";
  const testing::CliRun r = run_perceiver(
      {"run", "--model", dir, "--inputs", fx.dir + "/inputs.safetensors", "--outputs", out});
  ASSERT_EQ(r.code, 0) << r.out;
  const TensorMap got = io::load_safetensors(out).tensors;
  EXPECT_EQ(got.size(), fx.outputs.size());
  for (const auto& [name, ref] : fx.outputs) {
    ASSERT_TRUE(got.count(name)) << name << " not written\n" << r.out;
    ASSERT_TRUE(testing::same_shape(got.at(name), ref, name));
    EXPECT_LE(testing::forward_ratio(got.at(name), ref), 1.0) << name;
  }
  // --logits-only writes the logits alone.
  const testing::CliRun lo = run_perceiver(
      {"run", "--model", dir, "--inputs", fx.dir + "/inputs.safetensors", "--outputs", out, "--logits-only"});
  ASSERT_EQ(lo.code, 0) << lo.out;
  const TensorMap only = io::load_safetensors(out).tensors;
  ASSERT_EQ(only.size(), 1u);
  EXPECT_LE(testing::forward_ratio(only.at("logits"), fx.outputs.at("logits")), 1.0);
}

TEST(ViTCli, GradWritesLossAndEveryParameterGradient) {
  testing::TempDir tmp;
  const testing::HfFixture fx = testing::load_hf_fixture("vit");
  const std::string dir = make_vit_folder(tmp.path + "/vit");
  const std::string out = tmp.path + "/grads.safetensors";
  const testing::CliRun r = run_perceiver(
      {"grad", "--model", dir, "--inputs", fx.dir + "/inputs.safetensors", "--outputs", out});
  ASSERT_EQ(r.code, 0) << r.out;
  const TensorMap got = io::load_safetensors(out).tensors;
  double g_max = 0;
  size_t expected = 0;
  for (const auto& [name, ref] : fx.grads)
    if (name.rfind("loss", 0) != 0) g_max = std::max(g_max, testing::max_abs(ref)), ++expected;
  EXPECT_NEAR(g_max, 1.22, 0.01);  // README section 4
  EXPECT_EQ(got.size(), expected + 1);  // + "loss"
  ASSERT_TRUE(got.count("loss"));
  EXPECT_LE(testing::forward_ratio(got.at("loss"), fx.grads.at("loss")), 1.0)
      << got.at("loss").item() << " vs " << fx.grads.at("loss").item();
  for (const auto& [name, g] : got) {
    if (name == "loss") continue;
    ASSERT_TRUE(fx.grads.count(name)) << "unexpected gradient " << name;
    ASSERT_TRUE(testing::same_shape(g, fx.grads.at(name), name));
    EXPECT_LE(testing::grad_ratio(g, fx.grads.at(name), g_max), 1.0) << name;
  }
}

TEST(ViTCli, RunInterpolatesPositionsForAnotherSize) {
  testing::TempDir tmp;
  const std::string dir = make_vit_folder(tmp.path + "/vit");
  Rng rng(11);
  std::vector<float> v(2 * 3 * 40 * 24);
  for (float& x : v) x = rng.normal();
  const Tensor pixels = Tensor::from_vector({2, 3, 40, 24}, v);  // a 5 x 3 patch grid (config: 4 x 4)
  const std::string in = tmp.path + "/in.safetensors", out = tmp.path + "/out.safetensors";
  io::save_safetensors(in, {{"pixel_values", pixels}});
  const testing::CliRun r = run_perceiver({"run", "--model", dir, "--inputs", in, "--outputs", out});
  ASSERT_EQ(r.code, 0) << r.out;
  const TensorMap got = io::load_safetensors(out).tensors;
  ASSERT_TRUE(got.count("logits")) << r.out;
  EXPECT_EQ(got.at("logits").shape(), (Shape{2, 10}));
  EXPECT_EQ(got.at("embeddings").shape(), (Shape{2, 16, 64}));  // 1 + 5 * 3 tokens
  // The same as the model in-process.
  auto model = load_in_process(dir);
  autograd::NoGradGuard no_grad;
  const Tensor ref = model->forward_pixels(pixels);
  EXPECT_LE(testing::max_abs_diff(got.at("logits"), ref), 1e-6 * std::max(1.0, testing::max_abs(ref)));
}

// Writes the folder's weights as a float32 torch.save archive in place of model.safetensors.
void to_pytorch_model_bin(const std::string& dir) {
  const io::SafetensorsFile sd = io::load_safetensors(dir + "/model.safetensors");
  std::vector<std::pair<std::string, std::string>> items, storages;
  for (const std::string& name : sd.order) {
    const Tensor& t = sd.tensors.at(name);
    std::vector<int64_t> stride(t.shape().size(), 1);
    for (int i = static_cast<int>(stride.size()) - 2; i >= 0; --i) stride[i] = stride[i + 1] * t.dim(i + 1);
    const std::string key = std::to_string(storages.size());
    items.emplace_back(name, testing::pk::tensor(key, "FloatStorage", t.numel(), 0, t.shape(), stride));
    storages.emplace_back(key, testing::bytes_of(t.to_vector()));
  }
  std::filesystem::remove(dir + "/model.safetensors");
  std::ofstream(dir + "/pytorch_model.bin", std::ios::binary) << testing::torch_zip(testing::pk::state_dict(items), storages);
}

TEST(ViTCli, PytorchModelBinFolderRuns) {
  testing::TempDir tmp;
  const testing::HfFixture fx = testing::load_hf_fixture("vit");
  const std::string dir = make_vit_folder(tmp.path + "/vit");
  to_pytorch_model_bin(dir);
  const std::string out = tmp.path + "/out.safetensors";
  const testing::CliRun r = run_perceiver(
      {"run", "--model", dir, "--inputs", fx.dir + "/inputs.safetensors", "--outputs", out, "--logits-only"});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_LE(testing::forward_ratio(io::load_safetensors(out).tensors.at("logits"), fx.outputs.at("logits")), 1.0);
}

TEST(ViTCli, ClassifyPrintsTopLabels) {
  testing::TempDir tmp;
  const std::string dir = make_vit_folder(tmp.path + "/vit");
  const testing::CliRun r = run_perceiver({"classify", "--model", dir, image("chelsea.png")}, false);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 6) << r.out;  // the path + 5 labels
  // The ViT processor at `size`, then softmax(model(pixels)), the top classes.
  auto model = load_in_process(dir);
  auto expected = [&](int64_t size, int top) {
    data::ImageProcessorConfig p = data::vit_processor_config();
    p.size = size;
    const Tensor pixels = data::preprocess_images({data::load_image_rgb(image("chelsea.png"))}, p);
    EXPECT_EQ(pixels.shape(), (Shape{1, 3, size, size}));
    autograd::NoGradGuard no_grad;
    const Tensor probs = ops::softmax(model->forward_pixels(pixels));
    std::vector<int64_t> idx(10);
    for (int64_t i = 0; i < 10; ++i) idx[static_cast<size_t>(i)] = i;
    const float* q = probs.f32();
    std::stable_sort(idx.begin(), idx.end(), [q](int64_t x, int64_t y) { return q[x] > q[y]; });
    std::string report = image("chelsea.png") + "\n";
    for (int i = 0; i < top; ++i) {
      char line[128];
      std::snprintf(line, sizeof line, "  %.4f  %lld  LABEL_%lld\n", q[idx[i]], static_cast<long long>(idx[i]),
                    static_cast<long long>(idx[i]));
      report += line;
    }
    return report;
  };
  EXPECT_EQ(r.out, expected(32, 5));  // the config image_size

  // --size overrides the config size; the model interpolates its positions.
  const testing::CliRun big = run_perceiver({"classify", "--model", dir, image("chelsea.png"), "--size", "48", "--top", "3"}, false);
  ASSERT_EQ(big.code, 0) << big.out;
  EXPECT_EQ(big.out, expected(48, 3));
}

TEST(ViTCli, ErrorsAreClear) {
  testing::TempDir tmp;
  const testing::HfFixture fx = testing::load_hf_fixture("vit");
  const std::string dir = make_vit_folder(tmp.path + "/vit");
  const std::string in = tmp.path + "/in.safetensors", out = tmp.path + "/o.safetensors";
  io::save_safetensors(in, {{"inputs", Tensor::zeros({1, 3, 32, 32})}});
  testing::CliRun r = run_perceiver({"run", "--model", dir, "--inputs", in, "--outputs", out});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("[ViT] missing input 'pixel_values', got inputs: inputs"), std::string::npos) << r.out;
  io::save_safetensors(in, {{"pixel_values", Tensor::zeros({1, 3, 32, 32})}});
  r = run_perceiver({"grad", "--model", dir, "--inputs", in, "--outputs", out});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("loss: expected int32 'labels' (class ids) among the inputs, got inputs: pixel_values (float32)"), std::string::npos) << r.out;
  io::save_safetensors(in, {{"pixel_values", Tensor::zeros({1, 1, 32, 32})}});
  r = run_perceiver({"run", "--model", dir, "--inputs", in, "--outputs", out});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("pixel_values must be float32 (B, 3, H, W)"), std::string::npos) << r.out;
  r = run_perceiver({"run", "--model", dir, "--inputs", fx.dir + "/inputs.safetensors", "--outputs", out, "--chunk-size", "4"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("--chunk-size applies to Perceiver IO decoders"), std::string::npos) << r.out;
  // A config that disagrees with the weights: the strict load names the mismatch.
  nlohmann::json cfg = read_json_file(dir + "/config.json");
  cfg["hidden_size"] = 32;
  cfg["num_attention_heads"] = 2;
  std::ofstream(dir + "/config.json") << cfg.dump();
  r = run_perceiver({"run", "--model", dir, "--inputs", fx.dir + "/inputs.safetensors", "--outputs", out});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("vit.embeddings.cls_token"), std::string::npos) << r.out;
  // A bad config value: the error names config.json.
  cfg["hidden_act"] = "tanh";
  std::ofstream(dir + "/config.json") << cfg.dump();
  r = run_perceiver({"run", "--model", dir, "--inputs", fx.dir + "/inputs.safetensors", "--outputs", out});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find(dir + "/config.json"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("hidden_act"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace perceiver
