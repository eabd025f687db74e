// `perceiver predict --checkpoint C IMAGE...`: top classes with probabilities per image.
#include <algorithm>
#include <cstdio>
#include <numeric>

#include "commands.h"
#include "finite_check.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/data/fashion_mnist.h"
#include "perceiver/data/image.h"
#include "perceiver/ops/activation.h"
#include "perceiver/train/checkpoint.h"

namespace perceiver::cli {

Runner add_predict_command(CLI::App& sub) {
  struct Args {
    std::string checkpoint;
    std::vector<std::string> images;
    int top = 3;
    bool invert = false;
    int64_t max_pixels = data::kDefaultMaxImagePixels;
    CommonOptions common;
  };
  auto a = std::make_shared<Args>();
  sub.add_option("--checkpoint", a->checkpoint, "checkpoint or model .safetensors")->required()->check(CLI::ExistingFile);
  sub.add_option("images", a->images, "PNG/JPEG files (resized to the model's input and converted to grey)")->required();
  sub.add_option("--top", a->top, "number of classes to print")->check(CLI::Range(1, 1000));
  sub.add_flag("--invert", a->invert, "invert grey levels (dark object on light background -> Fashion-MNIST's light on dark)");
  add_image_limit_option(sub, a->max_pixels);
  add_common_options(sub, a->common);
  add_precision_option(sub, a->common);
  add_nonfinite_option(sub, a->common.allow_nonfinite);
  return [a]() {
    apply_common_options(a->common);
    train::Checkpoint ckpt = train::read_checkpoint(a->checkpoint);
    auto model = train::model_from_checkpoint(ckpt, a->checkpoint);
    check_finite_parameters(*model, "predict", a->checkpoint, a->common.allow_nonfinite);
    apply_precision(*model, a->common);
    const std::vector<int64_t> size = model->image_size();
    const int64_t num_classes = model->num_classes();
    check(size.size() == 2 && model->in_channels() == 1, "[predict] the model does not take 2-D grey images");
    const std::vector<std::string> names = data::fashion_mnist_class_names();
    autograd::NoGradGuard no_grad;
    for (const std::string& path : a->images) {
      Tensor img = data::load_image_grey(path, static_cast<int>(size[0]), static_cast<int>(size[1]), a->max_pixels);
      if (a->invert) {
        float* p = img.f32();
        for (int64_t i = 0; i < img.numel(); ++i) p[i] = 1.0f - p[i];
      }
      Tensor probs = ops::softmax(model->forward(img.reshape({1, size[0], size[1]})));
      check_finite("probabilities", probs, "predict", path, "output", a->common.allow_nonfinite);
      const float* p = probs.f32();
      std::vector<int64_t> idx(num_classes);
      std::iota(idx.begin(), idx.end(), 0);
      const int top = std::min<int64_t>(a->top, num_classes);
      std::partial_sort(idx.begin(), idx.begin() + top, idx.end(), [&](int64_t x, int64_t y) { return p[x] > p[y]; });
      std::printf("%s:", path.c_str());
      for (int i = 0; i < top; ++i) {
        const std::string name = idx[i] < (int64_t)names.size() ? names[idx[i]] : std::to_string(idx[i]);
        std::printf("%s %s %.4f", i ? "," : "", name.c_str(), p[idx[i]]);
      }
      std::printf("\n");
    }
    return 0;
  };
}

}  // namespace perceiver::cli
