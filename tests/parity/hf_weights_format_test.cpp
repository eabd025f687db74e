// Model folders with pytorch_model.bin (torch.save zip) instead of model.safetensors, and with
// float16 / bfloat16 weights: the loaded model equals the float32 model whose weights were rounded
// the same way, and a float32 .bin reproduces the fixture outputs.
#include <cstring>

#include "io/torch_bin_util.h"
#include "parity/hf_parity_util.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/autograd/grad_mode.h"

namespace perceiver {
namespace {

using models::perceiver_io::PerceiverIO;
using models::perceiver_io::TensorMap;

uint16_t f32_to_bf16(float f) {  // round to nearest even
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

Tensor bf16_rounded(const Tensor& t) {
  Tensor out = Tensor::empty(t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) out.f32()[i] = io::bf16_to_f32(f32_to_bf16(t.f32()[i]));
  return out;
}

// Writes the fixture's weights as a torch.save archive; float tensors as FloatStorage (or, with
// half, HalfStorage), the BatchNorm counter as LongStorage.
void write_torch_bin(const std::string& path, const io::SafetensorsFile& sd, bool half) {
  std::vector<std::pair<std::string, std::string>> items, storages;
  for (const std::string& name : sd.order) {
    const Tensor& t = sd.tensors.at(name);
    std::vector<int64_t> stride(t.shape().size(), 1);
    for (int i = static_cast<int>(stride.size()) - 2; i >= 0; --i) stride[i] = stride[i + 1] * t.dim(i + 1);
    const std::string key = std::to_string(storages.size());
    std::string bytes, cls;
    if (t.dtype() == DType::kI32) {
      std::vector<int64_t> v(t.data<int32_t>(), t.data<int32_t>() + t.numel());
      bytes = testing::bytes_of(v), cls = "LongStorage";
    } else if (half) {
      std::vector<uint16_t> v;
      for (float f : t.to_vector()) {
        _Float16 h = static_cast<_Float16>(f);
        uint16_t bits;
        std::memcpy(&bits, &h, 2);
        v.push_back(bits);
      }
      bytes = testing::bytes_of(v), cls = "HalfStorage";
    } else {
      bytes = testing::bytes_of(t.to_vector()), cls = "FloatStorage";
    }
    items.emplace_back(name, testing::pk::tensor(key, cls, t.numel(), 0, t.shape(), stride));
    storages.emplace_back(key, bytes);
  }
  std::ofstream(path, std::ios::binary) << testing::torch_zip(testing::pk::state_dict(items), storages);
}

TEST(HfWeights, PytorchModelBinGivesTheFixtureOutputs) {
  testing::TempDir tmp;
  for (const char* family : {"vision-perceiver-conv", "language-perceiver"}) {
    testing::HfFixture fx = testing::load_hf_fixture(family);
    const std::string dir = testing::make_hub_folder(fx, tmp.path + "/" + family);
    const io::SafetensorsFile sd = io::load_safetensors(dir + "/model.safetensors");
    std::filesystem::remove(dir + "/model.safetensors");
    write_torch_bin(dir + "/pytorch_model.bin", sd, false);
    auto model = testing::load_perceiver_io_folder(dir);
    autograd::NoGradGuard no_grad;
    TensorMap trace;
    model->forward(fx.inputs, &trace);
    for (const auto& [name, ref] : fx.outputs)
      EXPECT_LE(testing::forward_ratio(trace.at(name), ref), 1.0) << family << " " << name;
    if (std::string(family) == "vision-perceiver-conv") {
      int32_t tracked = -1;
      model->visit_buffers([&](const std::string& n, Tensor& b) {
        if (n.find("num_batches_tracked") != std::string::npos) tracked = b.data<int32_t>()[0];
      });
      EXPECT_EQ(tracked, 12345);
    }
  }
}

// Runs the model loaded from `dir` and a float32 model holding `rounded` weights; both must agree.
void expect_same_as_rounded(const std::string& dir, const testing::HfFixture& fx, const TensorMap& rounded) {
  auto loaded = testing::load_perceiver_io_folder(dir);
  auto reference = models::perceiver_io::create_perceiver_io(loaded->config());
  reference->load_state_dict(rounded, "rounded weights");
  reference->train(false);
  autograd::NoGradGuard no_grad;
  const Tensor a = loaded->forward(fx.inputs).at("logits"), b = reference->forward(fx.inputs).at("logits");
  EXPECT_EQ(testing::max_abs_diff(a, b), 0.0);
  // and still close to the float32 reference (half-precision weights, random model)
  EXPECT_LE(testing::max_abs_diff(a, fx.outputs.at("logits")), 0.1 * std::max(1.0, testing::max_abs(fx.outputs.at("logits"))));
}

TEST(HfWeights, HalfPrecisionWeightsAreConvertedOnLoad) {
  testing::TempDir tmp;
  testing::HfFixture fx = testing::load_hf_fixture("vision-perceiver-learned");
  const io::SafetensorsFile sd = io::load_safetensors(fx.dir + "/model.safetensors");
  // bfloat16 model.safetensors
  {
    const std::string dir = testing::make_hub_folder(fx, tmp.path + "/bf16");
    std::vector<std::pair<std::string, Tensor>> tensors;
    TensorMap rounded;
    for (const std::string& name : sd.order) {
      const Tensor& t = sd.tensors.at(name);
      Tensor h = Tensor::empty(t.shape(), DType::kBF16);
      uint16_t* bits = static_cast<uint16_t*>(h.raw_data());
      for (int64_t i = 0; i < t.numel(); ++i) bits[i] = f32_to_bf16(t.f32()[i]);
      tensors.emplace_back(name, h);
      rounded[name] = bf16_rounded(t);
    }
    io::save_safetensors(dir + "/model.safetensors", tensors);
    expect_same_as_rounded(dir, fx, rounded);
  }
  // float16 pytorch_model.bin
  {
    const std::string dir = testing::make_hub_folder(fx, tmp.path + "/f16");
    std::filesystem::remove(dir + "/model.safetensors");
    write_torch_bin(dir + "/pytorch_model.bin", sd, true);
    TensorMap rounded;
    for (const auto& [name, t] : sd.tensors) {
      Tensor r = Tensor::empty(t.shape());
      for (int64_t i = 0; i < t.numel(); ++i) r.f32()[i] = static_cast<float>(static_cast<_Float16>(t.f32()[i]));
      rounded[name] = r;
    }
    expect_same_as_rounded(dir, fx, rounded);
  }
}

}  // namespace
}  // namespace perceiver
