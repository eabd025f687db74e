// `perceiver attention --model DIR INPUT --out maps.png [--latents 0,5,9 | --first N]`: pictures
// of what the latents look at, the papers' figures: the first cross-attention's weights of each
// chosen latent over the input (Model::cross_attention_probs, averaged over heads).
//   - image classification folders: INPUT is a PNG/JPEG, preprocessed as `classify` does; one
//     panel per latent, its weights over the pixel grid (the conv stem's 56 x 56 grid for
//     ConvProcessing, scaled up) as a heat map over the grey processed image;
//   - our Perceiver classifier (a run's export/ of grey 2-D images): INPUT is read as `predict`
//     reads it (grey, resized to the model's input), panels drawn larger;
//   - text models (PerceiverForMaskedLM, ...SequenceClassification, ...TokenClassification):
//     INPUT is the text; one picture of latents (rows) by bytes (columns), [CLS] and [SEP]
//     included, each row scaled to its own largest weight.
// Prints, per latent, the input element it attends to most and the entropy of its weights.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "commands.h"
#include "finite_check.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/error.h"
#include "perceiver/data/byte_tokenizer.h"
#include "perceiver/data/image.h"
#include "perceiver/data/optical_flow.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/models/perceiver.h"
#include "perceiver/models/registry.h"
#include "perceiver/tasks/image_classification.h"

namespace perceiver::cli {
namespace {

namespace bt = data::byte_tokens;

// A perceptually ordered colour ramp (dark purple -> red -> yellow) for a weight in [0, 1].
std::array<float, 3> heat(float t) {
  static const float stops[5][3] = {{0, 0, 4}, {87, 16, 110}, {188, 55, 84}, {249, 142, 9}, {252, 255, 164}};
  t = std::clamp(t, 0.0f, 1.0f) * 4.0f;
  const int i = std::min(3, static_cast<int>(t));
  const float f = t - static_cast<float>(i);
  return {stops[i][0] + f * (stops[i + 1][0] - stops[i][0]), stops[i][1] + f * (stops[i + 1][1] - stops[i][1]),
          stops[i][2] + f * (stops[i + 1][2] - stops[i][2])};
}

std::vector<int64_t> parse_latents(const std::string& list, int64_t first, int64_t n) {
  std::vector<int64_t> out;
  if (list.empty()) {
    for (int64_t i = 0; i < std::min(first, n); ++i) out.push_back(i);
    return out;
  }
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int64_t v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    check(used == item.size() && !item.empty() && v >= 0 && v < n, "[attention] --latents: expected indices from 0 to ",
          n - 1, " separated by commas, got '", item, "'");
    out.push_back(v);
  }
  return out;
}

// Head-averaged weights of latent l over the M inputs of example 0.
std::vector<float> latent_weights(const Tensor& probs, int64_t l) {
  const int64_t heads = probs.dim(1), n = probs.dim(2), m = probs.dim(3);
  std::vector<float> w(static_cast<size_t>(m), 0.0f);
  for (int64_t h = 0; h < heads; ++h) {
    const float* p = probs.f32() + (h * n + l) * m;
    for (int64_t j = 0; j < m; ++j) w[static_cast<size_t>(j)] += p[j] / static_cast<float>(heads);
  }
  return w;
}

void report(const std::vector<float>& w, int64_t l, const std::string& where) {
  double entropy = 0;
  for (float v : w)
    if (v > 0) entropy -= v * std::log2(static_cast<double>(v));
  std::printf("latent %lld: most weight at %s (%.4f), entropy %.2f bits of %.2f\n", static_cast<long long>(l),
              where.c_str(), *std::max_element(w.begin(), w.end()), entropy, std::log2(static_cast<double>(w.size())));
}

// One panel per latent: its weights on a gh x gw grid over the grey processed image.
// Pixels are un-normalised with the processor's mean and std; small images are drawn `scale`
// times larger.
data::RgbImage image_panels(const Tensor& probs, const Tensor& pixels, const data::ImageProcessorConfig& proc,
                            const std::vector<int64_t>& latents, int64_t scale = 1) {
  const int64_t m = probs.dim(3), ih = pixels.dim(2), iw = pixels.dim(3), channels = pixels.dim(1);
  const int64_t ph = ih * scale, pw = iw * scale;
  int64_t gh = 0, gw = 0;
  gh = ih;
  gw = iw;
  if (m != ih * iw) {
    check(m * 16 == ih * iw && ih % 4 == 0 && iw % 4 == 0, "[attention] the model attends over ", m,
          " inputs, which is not the ", ih, " x ", iw, " image's pixel grid (nor its conv stem's quarter grid)");
    gh = ih / 4;
    gw = iw / 4;
  }
  const int64_t cols = std::min<int64_t>(4, static_cast<int64_t>(latents.size()));
  const int64_t rows = (static_cast<int64_t>(latents.size()) + cols - 1) / cols, gap = 4;
  const int64_t width = cols * pw + (cols + 1) * gap, height = rows * ph + (rows + 1) * gap;
  std::vector<uint8_t> out(static_cast<size_t>(width * height * 3), 255);
  // the processed image, un-normalised and grey
  std::vector<float> grey(static_cast<size_t>(ih * iw), 0.0f);
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < ih * iw; ++i)
      grey[static_cast<size_t>(i)] += std::clamp(pixels.f32()[c * ih * iw + i] * proc.image_std[c % 3] + proc.image_mean[c % 3],
                                                 0.0f, 1.0f) / static_cast<float>(channels);
  for (size_t k = 0; k < latents.size(); ++k) {
    const std::vector<float> w = latent_weights(probs, latents[k]);
    report(w, latents[k], [&] {
      const int64_t j = std::max_element(w.begin(), w.end()) - w.begin();
      return "row " + std::to_string(j / gw) + ", column " + std::to_string(j % gw) + " of the " + std::to_string(gh) +
             " x " + std::to_string(gw) + " grid";
    }());
    const float top = std::max(*std::max_element(w.begin(), w.end()), 1e-30f);
    const int64_t ox = gap + static_cast<int64_t>(k) % cols * (pw + gap), oy = gap + static_cast<int64_t>(k) / cols * (ph + gap);
    for (int64_t y = 0; y < ph; ++y)
      for (int64_t x = 0; x < pw; ++x) {
        const float t = w[static_cast<size_t>((y * gh / ph) * gw + x * gw / pw)] / top;
        const std::array<float, 3> h = heat(t);
        const float g = 255.0f * grey[static_cast<size_t>((y / scale) * iw + x / scale)];
        uint8_t* px = out.data() + ((oy + y) * width + ox + x) * 3;
        for (int c = 0; c < 3; ++c) px[c] = static_cast<uint8_t>(std::lround(0.35f * g + 0.65f * h[c]));
      }
  }
  return data::make_rgb_image(height, width, std::move(out));
}

// Latents (rows) by bytes (columns), each cell cell x cell pixels.
data::RgbImage text_map(const Tensor& probs, const std::vector<int64_t>& latents, const std::vector<int32_t>& ids) {
  const int64_t m = probs.dim(3), cell = 6;
  const int64_t width = m * cell, height = static_cast<int64_t>(latents.size()) * cell;
  std::vector<uint8_t> out(static_cast<size_t>(width * height * 3), 0);
  for (size_t r = 0; r < latents.size(); ++r) {
    const std::vector<float> w = latent_weights(probs, latents[r]);
    const int64_t j = std::max_element(w.begin(), w.end()) - w.begin();
    const int32_t id = ids[static_cast<size_t>(j)];
    char shown[32];
    if (id < bt::kByteOffset) std::snprintf(shown, sizeof shown, "%s", data::special_token_string(id));
    else if (id - bt::kByteOffset >= 0x20 && id - bt::kByteOffset < 0x7F) std::snprintf(shown, sizeof shown, "'%c'", id - bt::kByteOffset);
    else std::snprintf(shown, sizeof shown, "\\x%02X", static_cast<unsigned>(id - bt::kByteOffset));
    report(w, latents[r], "token " + std::to_string(j) + " " + shown);
    const float top = std::max(*std::max_element(w.begin(), w.end()), 1e-30f);
    for (int64_t y = 0; y < cell; ++y)
      for (int64_t x = 0; x < width; ++x) {
        const std::array<float, 3> h = heat(w[static_cast<size_t>(x / cell)] / top);
        uint8_t* px = out.data() + ((static_cast<int64_t>(r) * cell + y) * width + x) * 3;
        for (int c = 0; c < 3; ++c) px[c] = static_cast<uint8_t>(std::lround(h[c]));
      }
  }
  return data::make_rgb_image(height, width, std::move(out));
}

}  // namespace

Runner add_attention_command(CLI::App& sub) {
  struct Args {
    std::string model, input, out, latents;
    int64_t first = 8, max_pixels = data::kDefaultMaxImagePixels;
    bool invert = false;
    CommonOptions common;
  };
  auto a = std::make_shared<Args>();
  sub.add_option("--model", a->model, "Perceiver or Perceiver IO model folder (image classifier or text model)")
      ->required()->check(CLI::ExistingDirectory);
  sub.add_option("input", a->input, "an image file (image models) or a text (text models)")->required();
  sub.add_option("--out", a->out, "the picture (.png)")->required();
  sub.add_option("--latents", a->latents, "latents to draw, e.g. 0,5,9 (default: the first --first)");
  sub.add_option("--first", a->first, "draw latents 0 .. N-1 (default 8)")->check(CLI::Range(int64_t{1}, int64_t{4096}));
  sub.add_flag("--invert", a->invert, "grey Perceiver classifiers: invert grey levels (as `predict --invert`)");
  add_image_limit_option(sub, a->max_pixels);
  add_common_options(sub, a->common);
  add_precision_option(sub, a->common);
  return [a]() {
    apply_common_options(a->common);
    const nlohmann::json config = io::read_folder_config(a->model);
    const std::string arch = models::architecture_of(config, a->model + "/config.json");
    const std::vector<std::string> image_archs = tasks::image_classifier_architectures();
    autograd::NoGradGuard no_grad;
    data::RgbImage picture;
    if (std::find(image_archs.begin(), image_archs.end(), arch) != image_archs.end()) {
      const data::RgbImage image = data::load_image_rgb(a->input, a->max_pixels);
      const tasks::ImageClassifier c = tasks::ImageClassifier::load(a->model, {0, 0, "", "attention"});
      apply_precision(c.model(), a->common);
      const Tensor pixels = c.pixels({image});
      const Tensor probs = c.model().cross_attention_probs({{c.input_name(), pixels}});
      picture = image_panels(probs, pixels, c.processor(), parse_latents(a->latents, a->first, probs.dim(2)));
    } else if (arch == "PerceiverClassifier") {
      // our Perceiver classifier (a run's export/): grey images as `predict` reads them
      std::unique_ptr<models::Model> model = io::load_model_folder(a->model, config);
      apply_precision(*model, a->common);
      const models::PerceiverConfig& c = dynamic_cast<const models::Perceiver&>(*model).config();
      check(c.image_size.size() == 2 && c.in_channels == 1 && c.input_positions == "grid", "[attention] ", a->model,
            ": this Perceiver does not take 2-D grey images");
      const int64_t h = c.image_size[0], w = c.image_size[1];
      Tensor img = data::load_image_grey(a->input, static_cast<int>(h), static_cast<int>(w), a->max_pixels);
      if (a->invert)
        for (int64_t i = 0; i < img.numel(); ++i) img.f32()[i] = 1.0f - img.f32()[i];
      const Tensor probs = model->cross_attention_probs({{"inputs", img.reshape({1, h, w})}});
      data::ImageProcessorConfig grey;
      grey.image_mean = {0, 0, 0};
      grey.image_std = {1, 1, 1};
      picture = image_panels(probs, img.reshape({1, 1, h, w}), grey, parse_latents(a->latents, a->first, probs.dim(2)),
                             std::max<int64_t>(1, 224 / std::max(h, w)));
    } else {
      std::unique_ptr<models::Model> model = io::load_model_folder(a->model, config);
      apply_precision(*model, a->common);
      const auto* p = dynamic_cast<const models::perceiver_io::PerceiverIO*>(model.get());
      check(p != nullptr && p->config().vocab_size == bt::kVocabSize, "[attention] ", a->model, ": expected an image "
            "classification or byte-level text model folder, got ", arch);
      std::vector<int32_t> ids{bt::kCls};
      for (int32_t id : data::tokenize_bytes(a->input)) ids.push_back(id);
      ids.push_back(bt::kSep);
      const int64_t n = static_cast<int64_t>(ids.size()), max_len = p->config().max_position_embeddings;
      check(n <= max_len, "[attention] the text is ", n - 2, " tokens long; the model takes at most ", max_len - 2);
      const Tensor probs = model->cross_attention_probs({{"inputs", Tensor::from_vector_i32({1, n}, ids)}});
      picture = text_map(probs, parse_latents(a->latents, a->first, probs.dim(2)), ids);
    }
    data::write_png_rgb(a->out, picture);
    std::printf("wrote %s (%lld x %lld)\n", a->out.c_str(), static_cast<long long>(picture.width),
                static_cast<long long>(picture.height));
    return 0;
  };
}

}  // namespace perceiver::cli
