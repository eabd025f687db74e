// `perceiver autoencode --model DIR --inputs IN.safetensors --outputs OUT.safetensors
// [--chunk-size N]`: the multimodal Perceiver (PerceiverForMultimodalAutoencoding) reconstructs
// every output of its video, audio and label inputs ("inputs.image" (B, T, 3, H, W),
// "inputs.audio" (B, S, 1), "inputs.label" (B, K)). The encoder runs once; all output queries are
// then decoded in chunks of at most N queries (upstream decodes in 128 chunks), so the decoder's
// activations stay bounded. Writes "logits.<m>" (the HF outputs of a full decoding: image
// (B, T*H*W, 3), audio (B, S), label (B, K)) and the reconstructions in the input layouts,
// "reconstruction.image" (B, T, 3, H, W) and "reconstruction.audio" (B, S, 1).
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "finite_check.h"
#include "hf_task_util.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/error.h"
#include "perceiver/io/safetensors.h"

namespace perceiver::cli {
namespace {

namespace pio = models::perceiver_io;

// (B, T*H*W, C) -> (B, T, C, H, W), the layout of inputs.image.
Tensor video_from_points(const Tensor& flat, int64_t t, int64_t h, int64_t w) {
  const int64_t b = flat.dim(0), c = flat.dim(2);
  check(flat.dim(1) == t * h * w, "[autoencode] logits.image has ", flat.dim(1), " points, expected T*H*W = ", t * h * w);
  Tensor out = Tensor::empty({b, t, c, h, w});
  const float* src = flat.f32();
  float* dst = out.f32();
  for (int64_t n = 0; n < b; ++n)
    for (int64_t f = 0; f < t; ++f)
      for (int64_t p = 0; p < h * w; ++p)
        for (int64_t ch = 0; ch < c; ++ch)
          dst[((n * t + f) * c + ch) * h * w + p] = src[((n * t + f) * h * w + p) * c + ch];
  return out;
}

double mean_squared_error(const Tensor& a, const Tensor& b) {
  double s = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = double(a.f32()[i]) - double(b.f32()[i]);
    s += d * d;
  }
  return a.numel() > 0 ? s / static_cast<double>(a.numel()) : 0.0;
}

}  // namespace

Runner add_autoencode_command(CLI::App& sub) {
  struct Args {
    std::string model, inputs, outputs;
    int64_t chunk_size = 8192;
    CommonOptions common;
  };
  auto a = std::make_shared<Args>();
  sub.add_option("--model", a->model, "HF PerceiverForMultimodalAutoencoding folder (config.json + model.safetensors or pytorch_model.bin)")
      ->required()->check(CLI::ExistingDirectory);
  sub.add_option("--inputs", a->inputs, "inputs.image (B, T, 3, H, W), inputs.audio (B, S, 1), inputs.label (B, K) (.safetensors)")
      ->required()->check(CLI::ExistingFile);
  sub.add_option("--outputs", a->outputs, "where to write logits.* and reconstruction.* (.safetensors)")->required();
  sub.add_option("--chunk-size", a->chunk_size, "output queries decoded at once (default 8192)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  add_common_options(sub, a->common);
  add_precision_option(sub, a->common);
  add_nonfinite_option(sub, a->common.allow_nonfinite);
  return [a]() {
    apply_common_options(a->common);
    std::unique_ptr<pio::PerceiverIO> model = load_task_model(a->model, {pio::PerceiverTask::kMultimodalAutoencoding}, "autoencode");
    check_finite_parameters(*model, "autoencode", a->model, a->common.allow_nonfinite);
    apply_precision(*model, a->common);
    pio::TensorMap inputs;
    std::string ignored;
    for (auto& [name, t] : io::load_safetensors(a->inputs).tensors) {
      if (name.rfind("inputs.", 0) == 0) inputs.emplace(name, t);
      else ignored += (ignored.empty() ? "" : ", ") + name;
    }
    check(!inputs.empty(), "[autoencode] ", a->inputs, ": expected tensors named inputs.image, inputs.audio, inputs.label, got none");
    check_finite(inputs, "autoencode", a->inputs, "input", a->common.allow_nonfinite);
    if (!ignored.empty()) std::printf("ignoring %s (autoencode reads inputs.* and decodes every output)\n", ignored.c_str());

    autograd::NoGradGuard no_grad;
    pio::TensorMap out = model->decode_chunked(model->encode(inputs), a->chunk_size);
    const std::vector<int64_t>& shape = model->config().output_shape;  // (1, T, H, W)
    if (out.count("logits.image") && inputs.count("inputs.image")) {
      out["reconstruction.image"] = video_from_points(out.at("logits.image"), shape[1], shape[2], shape[3]);
      const Tensor& in = inputs.at("inputs.image");
      if (in.shape() == out.at("reconstruction.image").shape() && in.dtype() == DType::kF32)
        std::printf("image reconstruction mse %.6g\n", mean_squared_error(out.at("reconstruction.image"), in));
    }
    if (out.count("logits.audio") && inputs.count("inputs.audio")) {
      const Tensor& audio = out.at("logits.audio");
      out["reconstruction.audio"] = audio.reshape({audio.dim(0), audio.dim(1), 1}).clone();
      const Tensor& in = inputs.at("inputs.audio");
      if (in.shape() == out.at("reconstruction.audio").shape() && in.dtype() == DType::kF32)
        std::printf("audio reconstruction mse %.6g\n", mean_squared_error(out.at("reconstruction.audio"), in));
    }
    check_finite(out, "autoencode", a->outputs, "output", a->common.allow_nonfinite);  // nothing is written then
    std::vector<std::pair<std::string, Tensor>> tensors(out.begin(), out.end());
    io::save_safetensors(a->outputs, tensors, {{"format", "pt"}});
    for (const auto& [name, t] : tensors) std::printf("%s %s\n", name.c_str(), shape_str(t.shape()).c_str());
    return 0;
  };
}

}  // namespace perceiver::cli
