// `perceiver classify --model DIR IMAGE... [--top 5]`: image classification with a Hugging Face
// model folder. The folder's architecture picks the image processor and the model:
// PerceiverForImageClassification{Learned,Fourier,ConvProcessing} use the Perceiver processor
// (centre crop, Pillow BICUBIC to 224, ImageNet normalisation); ViTForImageClassification uses
// the ViT processor (BILINEAR resize to the config image_size, mean = std = 0.5) and the ViT model
// (which resamples its position table for any other size). The defaults are overridden by
// DIR/preprocessor_config.json, then by --size/--crop-size/--crop-offset. Prints, per image, the
// top-k labels of config id2label ("LABEL_<i>" when absent) with their softmax probabilities.
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "commands.h"
#include "finite_check.h"
#include "hf_task_util.h"
#include "perceiver/models/registry.h"
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

// A loaded classifier: (1, 3, H, W) pixel values -> (1, K) logits, and the label names.
struct Classifier {
  std::shared_ptr<nn::Module> module;  // the model (for set_precision)
  std::function<Tensor(const Tensor&)> logits;
  std::vector<std::string> labels;
  int64_t required_size = 0;  // > 0: the model only takes this input size (learned positions)
};

// Any image classification folder through the one reader: HF Perceiver classifiers take
// "inputs", ViT takes "pixel_values" (both (B, 3, H, W)).
Classifier load_classifier(const std::string& dir, const nlohmann::json& config, const std::vector<std::string>& accept) {
  std::shared_ptr<models::Model> model = io::load_model_folder(dir, config, accept, "classify");
  Classifier c;
  int64_t num_labels = 0;
  std::string input = "inputs";
  if (auto* p = dynamic_cast<pio::PerceiverIO*>(model.get())) {
    c.labels = p->config().id2label;
    num_labels = p->config().num_labels;
    if (p->task() == pio::PerceiverTask::kImageClassificationLearned) c.required_size = p->config().image_size;
  } else if (auto* v = dynamic_cast<models::ViT*>(model.get())) {
    c.labels = v->config().id2label;
    num_labels = v->num_classes();
    input = "pixel_values";
  }
  for (int64_t i = static_cast<int64_t>(c.labels.size()); i < num_labels; ++i)
    c.labels.push_back("LABEL_" + std::to_string(i));
  c.module = model;
  c.logits = [model, input](const Tensor& pixels) { return model->forward({{input, pixels}}).at("logits"); };
  return c;
}

data::ImageProcessorConfig perceiver_processor(const nlohmann::json&, const std::string&) {
  return data::perceiver_processor_config();
}

// The ViT processor resizing to the config's image_size (square; a non-square image_size keeps
// the hub default 224, the model resamples its position table either way).
data::ImageProcessorConfig vit_processor(const nlohmann::json& config, const std::string& dir) {
  data::ImageProcessorConfig p = data::vit_processor_config();
  const models::ViTConfig c = models::parse_hf_vit_config(config, dir + "/config.json");
  if (c.image_size[0] == c.image_size[1]) p.size = c.image_size[0];
  return p;
}

// One row per supported architecture: its image processor (from the folder's config.json).
struct Architecture {
  const char* name;
  data::ImageProcessorConfig (*processor)(const nlohmann::json& config, const std::string& dir);
};

const Architecture kArchitectures[] = {
    {"PerceiverForImageClassificationLearned", perceiver_processor},
    {"PerceiverForImageClassificationFourier", perceiver_processor},
    {"PerceiverForImageClassificationConvProcessing", perceiver_processor},
    {"ViTForImageClassification", vit_processor},
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

data::ImageProcessorConfig processor_for(const ClassifyArgs& a, const Architecture& arch, const nlohmann::json& config) {
  data::ImageProcessorConfig p = arch.processor(config, a.model);
  const std::string file = a.model + "/preprocessor_config.json";
  if (std::filesystem::exists(file)) p = data::parse_preprocessor_config(read_json_file(file, "image_processor"), file, p);
  if (a.size > 0) p.size = a.size;
  if (a.crop_size > 0) p.crop_size = a.crop_size;
  if (!a.crop_offset.empty()) p.crop_offset = a.crop_offset == "floor" ? data::CropOffset::kFloor : data::CropOffset::kCeil;
  return p;
}

}  // namespace

Runner add_classify_command(CLI::App& sub) {
  auto a = std::make_shared<ClassifyArgs>();
  sub.add_option("--model", a->model, "HF image classification folder (config.json + model.safetensors or pytorch_model.bin"
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
    const data::ImageProcessorConfig processor = processor_for(*a, arch, config);
    std::vector<data::RgbImage> images;  // decode everything first: a bad file fails before the model loads
    for (const std::string& path : a->images) images.push_back(data::load_image_rgb(path, a->max_pixels));
    const Classifier classifier = load_classifier(a->model, config, classifier_names());
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
