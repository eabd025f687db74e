// `perceiver classify --model DIR IMAGE... [--top 5]`: image classification with a Hugging Face
// or timm model folder (tasks/image_classification.h: the folder's architecture picks the image
// processor and the model; DIR/preprocessor_config.json, then --size/--crop-size/--crop-offset
// override the defaults). Prints, per image, the top-k labels of config id2label (timm:
// label_names; "LABEL_<i>" when absent) with their softmax probabilities.
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "finite_check.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/tasks/image_classification.h"

namespace perceiver::cli {
namespace {

struct ClassifyArgs {
  std::string model;
  std::vector<std::string> images;
  int top = 5;
  tasks::ClassifierOptions options;
  int64_t max_pixels = data::kDefaultMaxImagePixels;
  CommonOptions common;
};

}  // namespace

Runner add_classify_command(CLI::App& sub) {
  auto a = std::make_shared<ClassifyArgs>();
  sub.add_option("--model", a->model, "HF or timm (BoTNet) image classification folder (config.json + model.safetensors or pytorch_model.bin"
                 " [+ preprocessor_config.json])")->required()->check(CLI::ExistingDirectory);
  sub.add_option("images", a->images, "image files (PNG, JPEG, binary PGM/PPM)")->required();
  sub.add_option("--top", a->top, "number of labels to print per image (default 5)")->check(CLI::Range(1, 100000));
  sub.add_option("--size", a->options.size, "processor output size (default 224, ViT: config image_size, or preprocessor_config.json)")->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  sub.add_option("--crop-size", a->options.crop_size, "Perceiver crop: side = floor(size / crop-size * min(H, W)) (default 256)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  sub.add_option("--crop-offset", a->options.crop_offset, "odd crop margins: ceil (transformers 4.19, default) or floor (newer releases)")
      ->check(CLI::IsMember({"ceil", "floor"}));
  add_image_limit_option(sub, a->max_pixels);
  add_common_options(sub, a->common);
  add_precision_option(sub, a->common);
  add_nonfinite_option(sub, a->common.allow_nonfinite);
  return [a]() {
    apply_common_options(a->common);
    std::vector<data::RgbImage> images;  // decode everything first: a bad file fails before the model loads
    for (const std::string& path : a->images) images.push_back(data::load_image_rgb(path, a->max_pixels));
    const tasks::ImageClassifier classifier = tasks::ImageClassifier::load(a->model, a->options);
    check_finite_parameters(classifier.model(), "classify", a->model, a->common.allow_nonfinite);
    apply_precision(classifier.model(), a->common);
    autograd::NoGradGuard no_grad;
    for (size_t i = 0; i < images.size(); ++i) {
      const Tensor logits = classifier.logits({images[i]});
      check_finite("logits", logits, "classify", a->images[i], "output", a->common.allow_nonfinite);
      std::printf("%s\n", a->images[i].c_str());
      for (const tasks::LabelScore& s : classifier.top_k(logits, 0, a->top))
        std::printf("  %.4f  %lld  %s\n", s.probability, static_cast<long long>(s.index), s.label.c_str());
    }
    return 0;
  };
}

}  // namespace perceiver::cli
