// Image classification through any image classification folder (see tasks/image_classification.h).
#include "perceiver/tasks/image_classification.h"

#include <algorithm>
#include <filesystem>

#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/models/botnet/botnet.h"
#include "perceiver/models/perceiver_io/perceiver_io.h"
#include "perceiver/models/registry.h"
#include "perceiver/models/vit/vit.h"
#include "perceiver/models/vit/vit_config.h"
#include "perceiver/ops/activation.h"
#include "perceiver/tasks/common.h"

namespace perceiver::tasks {
namespace {

namespace pio = models::perceiver_io;

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
// the HF processor options (size, crop_size, crop_offset, preprocessor_config.json) apply.
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

const Architecture& find_architecture(const std::string& dir, const nlohmann::json& config, const std::string& who) {
  const std::string arch = models::architecture_of(config, dir + "/config.json");
  std::string supported;
  for (const Architecture& a : kArchitectures) {
    if (arch == a.name) return a;
    supported += std::string(supported.empty() ? "" : ", ") + a.name;
  }
  throw_error("[", who, "] ", dir, ": expected an image classification model folder (", supported, "), got ", arch);
}

// The architecture's processor, overridden by DIR/preprocessor_config.json and the options (HF
// folders; a timm folder's pretrained_cfg is its whole preprocessing).
data::ImageProcessorConfig processor_for(const std::string& dir, const ClassifierOptions& o, const Architecture& arch,
                                         const models::Model& model) {
  data::ImageProcessorConfig p = arch.processor(model);
  if (!arch.hf_processor) {
    check(o.size == 0 && o.crop_size == 0 && o.crop_offset.empty(), "[", o.command, "] ", dir, ": --size, --crop-size ",
          "and --crop-offset set the Hugging Face processors; a ", arch.name, " folder is preprocessed as its ",
          "config.json pretrained_cfg says (input_size, crop_pct, interpolation, mean, std)");
    return p;
  }
  const std::string file = dir + "/preprocessor_config.json";
  if (std::filesystem::exists(file)) p = data::parse_preprocessor_config(read_json_file(file, "image_processor"), file, p);
  if (o.size > 0) p.size = o.size;
  if (o.crop_size > 0) p.crop_size = o.crop_size;
  check(o.crop_offset.empty() || o.crop_offset == "ceil" || o.crop_offset == "floor", "[", o.command,
        "] crop offset: expected \"ceil\" or \"floor\", got \"", o.crop_offset, "\"");
  if (!o.crop_offset.empty()) p.crop_offset = o.crop_offset == "floor" ? data::CropOffset::kFloor : data::CropOffset::kCeil;
  return p;
}

}  // namespace

std::vector<std::string> image_classifier_architectures() {
  std::vector<std::string> names;
  for (const Architecture& a : kArchitectures) names.push_back(a.name);
  return names;
}

// Any image classification folder through the one reader: HF Perceiver classifiers take
// "inputs", ViT and BoTNet take "pixel_values" (all (B, C, H, W)).
ImageClassifier ImageClassifier::load(const std::string& dir, const ClassifierOptions& o) {
  const nlohmann::json config = io::read_folder_config(dir);  // parsed once
  const Architecture& arch = find_architecture(dir, config, o.command);
  ImageClassifier c;
  c.dir_ = dir;
  c.architecture_ = arch.name;
  c.model_ = io::load_model_folder(dir, config, image_classifier_architectures(), o.command);
  int64_t num_labels = 0, required_size = 0;
  if (auto* p = dynamic_cast<pio::PerceiverIO*>(c.model_.get())) {
    c.labels_ = p->config().id2label;
    num_labels = p->config().num_labels;
    c.input_ = "inputs";
    if (p->task() == pio::PerceiverTask::kImageClassificationLearned) required_size = p->config().image_size;
  } else if (auto* v = dynamic_cast<models::ViT*>(c.model_.get())) {
    c.labels_ = v->config().id2label;
    num_labels = v->num_classes();
  } else if (auto* b = dynamic_cast<models::BotNet*>(c.model_.get())) {
    c.labels_ = b->config().label_names;
    num_labels = b->num_classes();
  }
  for (int64_t i = static_cast<int64_t>(c.labels_.size()); i < num_labels; ++i)
    c.labels_.push_back("LABEL_" + std::to_string(i));
  c.processor_ = processor_for(dir, o, arch, *c.model_);
  check(required_size == 0 || (c.processor_.do_resize && c.processor_.size == required_size), "[", o.command, "] ", dir,
        ": ", arch.name, " takes ", required_size, " x ", required_size, " images (config image_size), got a ",
        "processor size of ", c.processor_.size, "; set --size ", required_size,
        " or \"size\" in preprocessor_config.json");
  return c;
}

Tensor ImageClassifier::pixels(const std::vector<data::RgbImage>& images) const {
  return data::preprocess_images(images, processor_);
}

Tensor ImageClassifier::logits_of_pixels(const Tensor& pixels) const {
  return model_->forward({{input_, pixels}}).at("logits");
}

Tensor ImageClassifier::logits(const std::vector<data::RgbImage>& images) const {
  return logits_of_pixels(pixels(images));
}

std::vector<LabelScore> ImageClassifier::top_k(const Tensor& logits, int64_t row, int64_t k) const {
  const int64_t n = logits.dim(-1);
  check(row >= 0 && row < logits.numel() / std::max<int64_t>(n, 1), "[classify] row ", row, " out of range");
  check(static_cast<int64_t>(labels_.size()) >= n, "[classify] ", dir_, ": the model gives ", n,
        " logits but id2label has ", labels_.size(), " labels");
  const Tensor probs = ops::softmax(logits.reshape({-1, n}).slice0(row, 1));
  std::vector<LabelScore> out;
  for (int64_t c : top_indices(probs.f32(), n, k))
    out.push_back({c, labels_[static_cast<size_t>(c)], probs.f32()[c]});
  return out;
}

}  // namespace perceiver::tasks
