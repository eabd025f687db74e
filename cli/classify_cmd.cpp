// `perceiver classify --model DIR IMAGE... [--top 5]`: image classification with a Hugging Face
// model folder. The folder's architecture picks the image processor and the model:
// PerceiverForImageClassification{Learned,Fourier,ConvProcessing} use the Perceiver processor
// (centre crop, Pillow BICUBIC to 224, ImageNet normalisation); ViTForImageClassification uses
// the ViT processor (BILINEAR resize to the config image_size, mean = std = 0.5) and the ViT model
// (which resamples its position table for any other size). The defaults are overridden by
// DIR/preprocessor_config.json, then by --size/--crop-size/--crop-offset. A timm BoTNet folder
// (botnet26t_256) uses timm's eval transform as its pretrained_cfg describes. Prints, per image,
// the top-k labels of config id2label (timm: label_names; "LABEL_<i>" when absent) with their
// softmax probabilities.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "commands.h"
#include "finite_check.h"
#include "hf_task_util.h"
#include "perceiver/models/registry.h"
#include "perceiver/models/botnet/botnet.h"
#include "perceiver/models/vit/vit.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/data/image_processor.h"
#include "perceiver/models/vit/vit_config.h"
#include "perceiver/ops/activation.h"

namespace perceiver::cli {
namespace {

namespace pio = models::perceiver_io;

struct ClassifyArgs {
  std::string model;
  std::vector<std::string> images;
  int top = 5;
  int64_t size = 0, crop_size = 0;  // 0: from preprocessor_config.json or the hub default
  std::string crop_offset;
  int64_t max_pixels = data::kDefaultMaxImagePixels;
  CommonOptions common;
};

// A loaded classifier: (1, C, H, W) pixel values -> (1, K) logits, the label names and the image
// processor its architecture uses.
struct Classifier {
  std::shared_ptr<nn::Module> module;  // the model (for set_precision)
  std::function<Tensor(const Tensor&)> logits;
  std::vector<std::string> labels;
  data::ImageProcessorConfig processor;
  int64_t required_size = 0;  // > 0: the model only takes this input size (learned positions)
};

// The Perceiver processor of the deepmind/vision-perceiver-* checkpoints.
data::ImageProcessorConfig perceiver_processor(const models::Model&) { return data::perceiver_processor_config(); }

// The ViT processor resizing to the config's image_size (square; a non-square image_size keeps
// the hub default 224, the model resamples its position table either way).
data::ImageProcessorConfig vit_processor(const models::Model& model) {
  data::ImageProcessorConfig p = data::vit_processor_config();
  const models::ViTConfig& c = dynamic_cast<const models::ViT&>(model).config();
  if (c.image_size[0] == c.image_size[1]) p.size = c.image_size[0];
  return p;
}

// timm's eval transform from the folder's pretrained_cfg (input size, crop_pct, interpolation,
// mean, std; grey when the model takes one channel).
data::ImageProcessorConfig timm_processor(const models::Model& model) {
  const models::BotNetConfig& c = dynamic_cast<const models::BotNet&>(model).config();
  data::ImageProcessorConfig p;
  p.timm = true;
  p.do_center_crop = false;
  p.height = c.image_size[0];
  p.width = c.image_size[1];
  p.crop_pct = c.crop_pct;
  p.resample = c.interpolation == "bilinear" ? data::Resample::kBilinear : data::Resample::kBicubic;
  check(c.in_channels == 1 || c.in_channels == 3, "[classify] the model takes ", c.in_channels,
        "-channel images; classify reads grey (1) or RGB (3)");
  p.channels = c.in_channels;
  for (size_t i = 0; i < 3; ++i) {
    p.image_mean[i] = c.mean[std::min(i, c.mean.size() - 1)];
    p.image_std[i] = c.std[std::min(i, c.std.size() - 1)];
  }
  return p;
}

// One row per supported architecture: its image processor (from the loaded model) and whether
// the HF processor flags (--size, --crop-size, --crop-offset, preprocessor_config.json) apply.
struct Architecture {
  const char* name;
  data::ImageProcessorConfig (*processor)(const models::Model& model);
  bool hf_processor;
};

const Architecture kArchitectures[] = {
    {"PerceiverForImageClassificationLearned", perceiver_processor, true},
    {"PerceiverForImageClassificationFourier", perceiver_processor, true},
    {"PerceiverForImageClassificationConvProcessing", perceiver_processor, true},
    {"ViTForImageClassification", vit_processor, true},
    {"botnet26t_256", timm_processor, false},
};

std::vector<std::string> classifier_names() {
  std::vector<std::string> names;
  for (const Architecture& a : kArchitectures) names.push_back(a.name);
  return names;
}

const Architecture& find_architecture(const std::string& dir, const nlohmann::json& config) {
  const std::string arch = models::architecture_of(config, dir + "/config.json");
  std::string supported;
  for (const Architecture& a : kArchitectures) {
    if (arch == a.name) return a;
    supported += std::string(supported.empty() ? "" : ", ") + a.name;
  }
  throw_error("[classify] ", dir, ": expected an image classification model folder (", supported, "), got ", arch);
}

// The architecture's processor, overridden by DIR/preprocessor_config.json and the flags (HF
// folders; a timm folder's pretrained_cfg is its whole preprocessing).
data::ImageProcessorConfig processor_for(const ClassifyArgs& a, const Architecture& arch, const models::Model& model) {
  data::ImageProcessorConfig p = arch.processor(model);
  if (!arch.hf_processor) {
    check(a.size == 0 && a.crop_size == 0 && a.crop_offset.empty(), "[classify] ", a.model, ": --size, --crop-size and ",
          "--crop-offset set the Hugging Face processors; a ", arch.name, " folder is preprocessed as its config.json ",
          "pretrained_cfg says (input_size, crop_pct, interpolation, mean, std)");
    return p;
  }
  const std::string file = a.model + "/preprocessor_config.json";
  if (std::filesystem::exists(file)) p = data::parse_preprocessor_config(read_json_file(file, "image_processor"), file, p);
  if (a.size > 0) p.size = a.size;
  if (a.crop_size > 0) p.crop_size = a.crop_size;
  if (!a.crop_offset.empty()) p.crop_offset = a.crop_offset == "floor" ? data::CropOffset::kFloor : data::CropOffset::kCeil;
  return p;
}

// Any image classification folder through the one reader: HF Perceiver classifiers take
// "inputs", ViT and BoTNet take "pixel_values" (all (B, C, H, W)).
Classifier load_classifier(const ClassifyArgs& a, const nlohmann::json& config, const Architecture& arch) {
  std::shared_ptr<models::Model> model = io::load_model_folder(a.model, config, classifier_names(), "classify");
  Classifier c;
  int64_t num_labels = 0;
  std::string input = "pixel_values";
  if (auto* p = dynamic_cast<pio::PerceiverIO*>(model.get())) {
    c.labels = p->config().id2label;
    num_labels = p->config().num_labels;
    input = "inputs";
    if (p->task() == pio::PerceiverTask::kImageClassificationLearned) c.required_size = p->config().image_size;
  } else if (auto* v = dynamic_cast<models::ViT*>(model.get())) {
    c.labels = v->config().id2label;
    num_labels = v->num_classes();
  } else if (auto* b = dynamic_cast<models::BotNet*>(model.get())) {
    c.labels = b->config().label_names;
    num_labels = b->num_classes();
  }
  for (int64_t i = static_cast<int64_t>(c.labels.size()); i < num_labels; ++i)
    c.labels.push_back("LABEL_" + std::to_string(i));
  c.processor = processor_for(a, arch, *model);
  c.module = model;
  c.logits = [model, input](const Tensor& pixels) { return model->forward({{input, pixels}}).at("logits"); };
  return c;
}

}  // namespace

Runner add_classify_command(CLI::App& sub) {
  auto a = std::make_shared<ClassifyArgs>();
  sub.add_option("--model", a->model, "HF or timm (BoTNet) image classification folder (config.json + model.safetensors or pytorch_model.bin"
                 " [+ preprocessor_config.json])")->required()->check(CLI::ExistingDirectory);
  sub.add_option("images", a->images, "image files (PNG or JPEG)")->required();
  sub.add_option("--top", a->top, "number of labels to print per image (default 5)")->check(CLI::Range(1, 100000));
  sub.add_option("--size", a->size, "processor output size (default 224, ViT: config image_size, or preprocessor_config.json)")->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  sub.add_option("--crop-size", a->crop_size, "Perceiver crop: side = floor(size / crop-size * min(H, W)) (default 256)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  sub.add_option("--crop-offset", a->crop_offset, "odd crop margins: ceil (transformers 4.19, default) or floor (newer releases)")
      ->check(CLI::IsMember({"ceil", "floor"}));
  add_image_limit_option(sub, a->max_pixels);
  add_common_options(sub, a->common);
  add_precision_option(sub, a->common);
  add_nonfinite_option(sub, a->common.allow_nonfinite);
  return [a]() {
    apply_common_options(a->common);
    const nlohmann::json config = io::read_folder_config(a->model);  // parsed once
    const Architecture& arch = find_architecture(a->model, config);
    std::vector<data::RgbImage> images;  // decode everything first: a bad file fails before the model loads
    for (const std::string& path : a->images) images.push_back(data::load_image_rgb(path, a->max_pixels));
    const Classifier classifier = load_classifier(*a, config, arch);
    const data::ImageProcessorConfig& processor = classifier.processor;
    check_finite_parameters(*classifier.module, "classify", a->model, a->common.allow_nonfinite);
    apply_precision(*classifier.module, a->common);
    check(classifier.required_size == 0 || (processor.do_resize && processor.size == classifier.required_size),
          "[classify] ", a->model, ": ", arch.name, " takes ", classifier.required_size, " x ", classifier.required_size,
          " images (config image_size), got a processor size of ", processor.size, "; set --size ",
          classifier.required_size, " or \"size\" in preprocessor_config.json");
    autograd::NoGradGuard no_grad;
    for (size_t i = 0; i < images.size(); ++i) {
      const Tensor logits = classifier.logits(data::preprocess_images({images[i]}, processor));
      check_finite("logits", logits, "classify", a->images[i], "output", a->common.allow_nonfinite);
      const int64_t k = logits.dim(-1);
      check(static_cast<int64_t>(classifier.labels.size()) >= k, "[classify] ", a->model, ": the model gives ", k,
            " logits but id2label has ", classifier.labels.size(), " labels");
      const Tensor probs = ops::softmax(logits.reshape({1, k}));
      std::printf("%s\n", a->images[i].c_str());
      for (int64_t c : top_indices(probs.f32(), k, a->top))
        std::printf("  %.4f  %lld  %s\n", probs.f32()[c], static_cast<long long>(c), classifier.labels[static_cast<size_t>(c)].c_str());
    }
    return 0;
  };
}

}  // namespace perceiver::cli
