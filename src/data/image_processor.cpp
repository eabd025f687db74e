// HF image processors of the vision checkpoints: RGB decoding (image_codec), the Perceiver centre
// crop, Pillow-exact fixed-point BICUBIC/BILINEAR resampling, float32 normalisation.
#include "perceiver/data/image_processor.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/data/image_codec.h"
#include "perceiver/io/atomic_file.h"

namespace perceiver::data {
namespace {

constexpr int64_t kMaxSide = 1 << 16;
constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

double bicubic_filter(double x) {  // Keys, a = -0.5, as Pillow writes it
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Fixed-point taps of one output index: source indices first .. first + weights.size() - 1.
struct FixedTaps {
  int64_t first = 0;
  std::vector<int32_t> weights;
};

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis.
std::vector<FixedTaps> pillow_coeffs(int64_t in_size, int64_t out_size, Resample resample) {
  double (*filter)(double) = resample == Resample::kBicubic ? bicubic_filter : bilinear_filter;
  const double filter_support = resample == Resample::kBicubic ? 2.0 : 1.0;
  const double scale = static_cast<double>(static_cast<float>(in_size) - 0.0f) / static_cast<double>(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = filter_support * filterscale;
  const double ss = 1.0 / filterscale;
  std::vector<FixedTaps> taps(static_cast<size_t>(out_size));
  std::vector<double> w;
  for (int64_t xx = 0; xx < out_size; ++xx) {
    const double center = 0.0 + (static_cast<double>(xx) + 0.5) * scale;
    const int64_t xmin = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    const int64_t xmax = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in_size) - xmin;
    w.assign(static_cast<size_t>(std::max<int64_t>(xmax, 0)), 0.0);
    double ww = 0.0;
    for (int64_t x = 0; x < xmax; ++x) {
      const double v = filter((static_cast<double>(x + xmin) - center + 0.5) * ss);
      w[static_cast<size_t>(x)] = v;
      ww += v;
    }
    FixedTaps& t = taps[static_cast<size_t>(xx)];
    t.first = xmin;
    for (double v : w) {
      if (ww != 0.0) v /= ww;
      const double scaled = v * static_cast<double>(1 << kPrecisionBits);
      t.weights.push_back(static_cast<int32_t>(v < 0 ? -0.5 + scaled : 0.5 + scaled));
    }
  }
  return taps;
}

uint8_t clip8(int64_t acc) {
  if (acc >= (int64_t{1} << kPrecisionBits << 8)) return 255;
  if (acc <= 0) return 0;
  return static_cast<uint8_t>(acc >> kPrecisionBits);
}

// One separable pass along x (horizontal) or y (vertical), 8-bit in and out.
RgbImage resample_pass(const RgbImage& in, int64_t out_size, bool horizontal, Resample resample) {
  const int64_t in_size = horizontal ? in.width : in.height;
  const std::vector<FixedTaps> taps = pillow_coeffs(in_size, out_size, resample);
  RgbImage out;
  out.height = horizontal ? in.height : out_size;
  out.width = horizontal ? out_size : in.width;
  out.pixels.resize(static_cast<size_t>(out.height * out.width * 3));
  const int64_t step = horizontal ? 3 : in.width * 3;  // distance between neighbouring taps
  for (int64_t y = 0; y < out.height; ++y)
    for (int64_t x = 0; x < out.width; ++x) {
      const FixedTaps& t = taps[static_cast<size_t>(horizontal ? x : y)];
      const uint8_t* src = in.pixels.data() + (horizontal ? (y * in.width + t.first) * 3 : (t.first * in.width + x) * 3);
      uint8_t* dst = out.pixels.data() + (y * out.width + x) * 3;
      for (int c = 0; c < 3; ++c) {
        int64_t acc = int64_t{1} << (kPrecisionBits - 1);
        for (size_t k = 0; k < t.weights.size(); ++k)
          acc += static_cast<int64_t>(src[static_cast<int64_t>(k) * step + c]) * t.weights[k];
        dst[c] = clip8(acc);
      }
    }
  return out;
}

void check_image(const RgbImage& image, const char* who) {
  check(image.height >= 1 && image.width >= 1 && image.height <= kMaxSide && image.width <= kMaxSide &&
            image.pixels.size() == static_cast<size_t>(image.height * image.width * 3),
        "[image_processor] ", who, ": expected an RGB image of 1 to ", kMaxSide, " pixels a side with H*W*3 bytes, got ",
        image.height, " x ", image.width, " with ", image.pixels.size(), " bytes");
}

// "size" / "crop_size": an integer, {"height": h, "width": w} with h == w, or {"shortest_edge": s}.
int64_t json_side(JsonObject& o, const char* key, int64_t def) {
  const nlohmann::json* v = o.find(key);
  if (!v) return def;
  const std::string exp = "an integer in [1, " + std::to_string(kMaxSide) + "], {\"height\": h, \"width\": h} or "
                          "{\"shortest_edge\": s}";
  int64_t h = 0, w = 0;
  if (json_to_int(*v, 1, kMaxSide, h)) return h;
  if (v->is_object() && v->contains("shortest_edge") && json_to_int(v->at("shortest_edge"), 1, kMaxSide, h)) return h;
  if (v->is_object() && v->contains("height") && v->contains("width") && json_to_int(v->at("height"), 1, kMaxSide, h) &&
      json_to_int(v->at("width"), 1, kMaxSide, w)) {
    if (h != w) throw_error(o.name(key), ": expected a square size, got ", h, " x ", w);
    return h;
  }
  o.fail(key, exp, *v);
}

// "image_mean" / "image_std": one number or three, finite (and positive for the std).
std::array<float, 3> json_triple(JsonObject& o, const char* key, std::array<float, 3> def, bool positive) {
  const nlohmann::json* v = o.find(key);
  if (!v) return def;
  auto ok = [&](const nlohmann::json& x) {
    return x.is_number() && std::fabs(x.get<double>()) <= 1e30 && (!positive || x.get<double>() > 0);
  };
  std::array<float, 3> out{};
  if (ok(*v)) {
    out.fill(static_cast<float>(v->get<double>()));
    return out;
  }
  if (!v->is_array() || v->size() != 3 || !ok((*v)[0]) || !ok((*v)[1]) || !ok((*v)[2]))
    o.fail(key, std::string("1 or 3 finite") + (positive ? " positive" : "") + " numbers", *v);
  for (size_t i = 0; i < 3; ++i) out[i] = static_cast<float>((*v)[i].get<double>());
  return out;
}

}  // namespace

RgbImage make_rgb_image(int64_t height, int64_t width, std::vector<uint8_t> pixels) {
  RgbImage image{height, width, std::move(pixels)};
  check_image(image, "make_rgb_image");
  return image;
}

RgbImage decode_image_rgb(const std::string& bytes, const std::string& what, int64_t max_pixels) {
  DecodedImage d = decode_image(bytes, what, max_pixels);
  if (d.channels == 3) return RgbImage{d.height, d.width, std::move(d.pixels)};
  std::vector<uint8_t> rgb(d.pixels.size() * 3);  // grey -> RGB replicates, like Pillow's convert("RGB")
  for (size_t i = 0; i < d.pixels.size(); ++i) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = d.pixels[i];
  return RgbImage{d.height, d.width, std::move(rgb)};
}

RgbImage load_image_rgb(const std::string& path, int64_t max_pixels) {
  return decode_image_rgb(io::read_file(path), path, max_pixels);
}

RgbImage crop(const RgbImage& image, int64_t top, int64_t left, int64_t h, int64_t w) {
  check_image(image, "crop");
  check(top >= 0 && left >= 0 && h >= 1 && w >= 1 && top + h <= image.height && left + w <= image.width,
        "[image_processor] crop: expected a box inside the ", image.height, " x ", image.width, " image, got top ", top,
        " left ", left, " size ", h, " x ", w);
  RgbImage out{h, w, std::vector<uint8_t>(static_cast<size_t>(h * w * 3))};
  for (int64_t y = 0; y < h; ++y)
    std::copy_n(image.pixels.begin() + ((top + y) * image.width + left) * 3, w * 3, out.pixels.begin() + y * w * 3);
  return out;
}

RgbImage pillow_resize(const RgbImage& image, int64_t out_h, int64_t out_w, Resample resample) {
  check_image(image, "pillow_resize");
  check(out_h >= 1 && out_w >= 1 && out_h <= kMaxSide && out_w <= kMaxSide, "[image_processor] pillow_resize: output size must be in [1, ",
        kMaxSide, "], got ", out_h, " x ", out_w);
  // Pillow skips a pass whose axis keeps its size; horizontal first, then vertical.
  RgbImage out = image;
  if (out_w != image.width) out = resample_pass(out, out_w, true, resample);
  if (out_h != image.height) out = resample_pass(out, out_h, false, resample);
  return out;
}

CropBox perceiver_crop_box(int64_t height, int64_t width, int64_t size, int64_t crop_size, CropOffset offset) {
  check(height >= 1 && width >= 1 && size >= 1 && crop_size >= 1, "[image_processor] crop: expected positive sizes, got image ",
        height, " x ", width, ", size ", size, ", crop_size ", crop_size);
  const double side = static_cast<double>(size) / static_cast<double>(crop_size) * static_cast<double>(std::min(height, width));
  CropBox box;
  box.size = static_cast<int64_t>(std::floor(side));
  check(box.size >= 1 && box.size <= std::min(height, width), "[image_processor] crop: the crop side floor(", size, " / ",
        crop_size, " * ", std::min(height, width), ") = ", box.size, " must lie in [1, ", std::min(height, width),
        "] (size must not exceed crop_size)");
  const int64_t bump = offset == CropOffset::kCeil ? 1 : 0;
  box.top = (height - box.size + bump) / 2;
  box.left = (width - box.size + bump) / 2;
  return box;
}

ImageProcessorConfig perceiver_processor_config() { return ImageProcessorConfig{}; }

ImageProcessorConfig vit_processor_config() {
  ImageProcessorConfig c;
  c.do_center_crop = false;
  c.resample = Resample::kBilinear;
  c.image_mean = {0.5f, 0.5f, 0.5f};
  c.image_std = {0.5f, 0.5f, 0.5f};
  return c;
}

ImageProcessorConfig parse_preprocessor_config(const nlohmann::json& j, const std::string& what, ImageProcessorConfig c) {
  JsonObject o(j, JsonObject::Mode::kLenient, "image_processor", what);
  c.do_center_crop = o.get_bool("do_center_crop", c.do_center_crop);
  c.do_resize = o.get_bool("do_resize", c.do_resize);
  c.do_normalize = o.get_bool("do_normalize", c.do_normalize);
  c.crop_size = json_side(o, "crop_size", c.crop_size);
  c.size = json_side(o, "size", c.size);
  if (const nlohmann::json* r = o.find("resample")) {
    int64_t v = 0;
    if (!json_to_int(*r, 2, 3, v)) o.fail("resample", "2 (bilinear) or 3 (bicubic)", *r);
    c.resample = static_cast<Resample>(v);
  }
  c.image_mean = json_triple(o, "image_mean", c.image_mean, false);
  c.image_std = json_triple(o, "image_std", c.image_std, true);
  return c;
}

std::array<int64_t, 2> timm_resized_size(int64_t h, int64_t w, const ImageProcessorConfig& config) {
  check(config.height >= 1 && config.width >= 1 && config.crop_pct > 0.0 && config.crop_pct <= 1.0,
        "[image_processor] timm: expected a positive crop size and crop_pct in (0, 1], got ", config.height, " x ",
        config.width, " and ", config.crop_pct);
  // scale_size = floor(input_size / crop_pct) per side (Python float division)
  const double sh = std::floor(static_cast<double>(config.height) / config.crop_pct);
  const double sw = std::floor(static_cast<double>(config.width) / config.crop_pct);
  if (sh == sw) {
    // torchvision Resize(int): the shorter side becomes sh, the longer int(sh * long / short)
    const int64_t s = static_cast<int64_t>(sh), shorter = std::min(h, w), longer = std::max(h, w);
    const auto scaled = static_cast<int64_t>(static_cast<double>(s * longer) / static_cast<double>(shorter));
    return w <= h ? std::array<int64_t, 2>{scaled, s} : std::array<int64_t, 2>{s, scaled};
  }
  // timm ResizeKeepRatio(longest=0): ratio = min(h / sh, w / sw), sides round(side / ratio)
  const double ratio = std::min(static_cast<double>(h) / sh, static_cast<double>(w) / sw);
  return {static_cast<int64_t>(std::nearbyint(static_cast<double>(h) / ratio)),
          static_cast<int64_t>(std::nearbyint(static_cast<double>(w) / ratio))};  // half to even, as round()
}

namespace {

// Pillow's convert("L") of every pixel, kept as R = G = B.
RgbImage to_grey(const RgbImage& image) {
  RgbImage out = image;
  for (size_t i = 0; i < out.pixels.size(); i += 3) {
    const uint32_t l = (out.pixels[i] * 19595u + out.pixels[i + 1] * 38470u + out.pixels[i + 2] * 7471u + 0x8000u) >> 16;
    out.pixels[i] = out.pixels[i + 1] = out.pixels[i + 2] = static_cast<uint8_t>(l);
  }
  return out;
}

// timm's eval transform: resize keeping the aspect ratio, then torchvision's centre crop.
RgbImage timm_resize_crop(const RgbImage& image, const ImageProcessorConfig& config) {
  const auto [rh, rw] = timm_resized_size(image.height, image.width, config);
  check(rh >= config.height && rw >= config.width && rh <= kMaxSide && rw <= kMaxSide, "[image_processor] timm: the ",
        image.height, " x ", image.width, " image resizes to ", rh, " x ", rw, ", which must cover the ", config.height,
        " x ", config.width, " crop and stay under ", kMaxSide, " a side");
  const RgbImage resized = rh == image.height && rw == image.width ? image : pillow_resize(image, rh, rw, config.resample);
  // int(round((H - h) / 2.0)): Python rounds half to even, as nearbyint in the default mode
  const auto top = static_cast<int64_t>(std::nearbyint(static_cast<double>(rh - config.height) / 2.0));
  const auto left = static_cast<int64_t>(std::nearbyint(static_cast<double>(rw - config.width) / 2.0));
  return crop(resized, top, left, config.height, config.width);
}

}  // namespace

RgbImage process_rgb(const RgbImage& image, const ImageProcessorConfig& config) {
  check_image(image, "process");
  check(config.channels == 1 || config.channels == 3, "[image_processor] expected 1 (grey) or 3 (RGB) channels, got ",
        config.channels);
  if (config.timm) return timm_resize_crop(config.channels == 1 ? to_grey(image) : image, config);
  RgbImage out = config.channels == 1 ? to_grey(image) : image;
  if (config.do_center_crop) {
    const CropBox b = perceiver_crop_box(image.height, image.width, config.size, config.crop_size, config.crop_offset);
    out = crop(out, b.top, b.left, b.size, b.size);
  }
  if (config.do_resize) out = pillow_resize(out, config.size, config.size, config.resample);
  return out;
}

Tensor to_normalized_chw(const RgbImage& image, const ImageProcessorConfig& config) {
  check_image(image, "normalize");
  const int64_t hw = image.height * image.width;
  check(config.channels == 1 || config.channels == 3, "[image_processor] expected 1 (grey) or 3 (RGB) channels, got ",
        config.channels);
  Tensor t = Tensor::empty({config.channels, image.height, image.width});
  float* dst = t.f32();
  for (int c = 0; c < config.channels; ++c) {
    const float mean = config.image_mean[static_cast<size_t>(c)], std = config.image_std[static_cast<size_t>(c)];
    for (int64_t i = 0; i < hw; ++i) {
      const float x = static_cast<float>(image.pixels[static_cast<size_t>(i * 3 + c)]) / 255.0f;
      dst[c * hw + i] = config.do_normalize ? (x - mean) / std : x;
    }
  }
  return t;
}

Tensor preprocess_images(const std::vector<RgbImage>& images, const ImageProcessorConfig& config) {
  check(!images.empty(), "[image_processor] expected at least one image, got none");
  std::vector<Tensor> chw;
  for (const RgbImage& image : images) chw.push_back(to_normalized_chw(process_rgb(image, config), config));
  const Shape& s = chw.front().shape();
  for (size_t i = 1; i < chw.size(); ++i)
    check(chw[i].shape() == s, "[image_processor] images ", 0, " and ", i, " give different shapes ", shape_str(s), " vs ",
          shape_str(chw[i].shape()), " (without resizing every image must have the same size)");
  Tensor batch = Tensor::empty({static_cast<int64_t>(chw.size()), s[0], s[1], s[2]});
  const int64_t n = chw.front().numel();
  for (size_t i = 0; i < chw.size(); ++i) std::copy_n(chw[i].f32(), n, batch.f32() + static_cast<int64_t>(i) * n);
  return batch;
}

}  // namespace perceiver::data
