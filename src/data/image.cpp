// Grey image loading (image_codec), area/bilinear resizing, grey PNG writing.
#include "perceiver/data/image.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "perceiver/core/error.h"
#include "perceiver/data/image_codec.h"
#include "perceiver/io/atomic_file.h"

namespace perceiver::data {
namespace {

constexpr int kMaxSide = 1 << 16;

struct Tap {
  int64_t first = 0;           // first source index
  std::vector<float> weights;  // weights for source indices first, first+1, ...
};

// Per output index along one axis: the source indices and weights (summing to 1).
std::vector<Tap> axis_taps(int64_t in, int64_t out) {
  std::vector<Tap> taps(static_cast<size_t>(out));
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  for (int64_t o = 0; o < out; ++o) {
    Tap& t = taps[static_cast<size_t>(o)];
    if (scale > 1.0) {  // shrink: average the source interval [o*scale, (o+1)*scale)
      const double lo = o * scale, hi = std::min(static_cast<double>(in), (o + 1) * scale);
      t.first = static_cast<int64_t>(std::floor(lo));
      const int64_t last = std::min<int64_t>(in - 1, static_cast<int64_t>(std::ceil(hi)) - 1);
      double sum = 0;
      for (int64_t s = t.first; s <= last; ++s) {
        const double w = std::min<double>(s + 1, hi) - std::max<double>(s, lo);
        t.weights.push_back(static_cast<float>(std::max(0.0, w)));
        sum += std::max(0.0, w);
      }
      for (float& w : t.weights) w = static_cast<float>(w / sum);
    } else {  // grow (or keep): bilinear between the two nearest source centres
      const double src = std::clamp((o + 0.5) * scale - 0.5, 0.0, static_cast<double>(in - 1));
      t.first = std::min<int64_t>(static_cast<int64_t>(std::floor(src)), in - 1);
      const double frac = src - t.first;
      t.weights.push_back(static_cast<float>(1.0 - frac));
      if (t.first + 1 < in && frac > 0) t.weights.push_back(static_cast<float>(frac));
    }
  }
  return taps;
}

void check_out_size(const std::string& where, int out_h, int out_w) {
  check(out_h >= 1 && out_w >= 1 && out_h <= kMaxSide && out_w <= kMaxSide, where,
        ": output size must be in [1, ", kMaxSide, "], got ", out_h, " x ", out_w);
}

// resize_plane; errors start with `what`.
Tensor resize(const Tensor& image, int out_h, int out_w, const std::string& what) {
  check(image.defined() && image.rank() == 2 && image.dtype() == DType::kF32, what,
        " expected a float32 (H, W) image, got ",
        image.defined() ? std::string(dtype_name(image.dtype())) + shape_str(image.shape())
                        : std::string("undefined"));
  check_out_size(what, out_h, out_w);
  const int64_t h = image.dim(0), w = image.dim(1);
  check(h >= 1 && w >= 1, what, " input must be non-empty, got ", shape_str(image.shape()));
  const std::vector<Tap> tx = axis_taps(w, out_w), ty = axis_taps(h, out_h);
  // Horizontal pass: (h, w) -> (h, out_w); then vertical: -> (out_h, out_w).
  std::vector<float> tmp(static_cast<size_t>(h * out_w));
  const float* src = image.f32();
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < out_w; ++x) {
      const Tap& t = tx[static_cast<size_t>(x)];
      double acc = 0;
      for (size_t k = 0; k < t.weights.size(); ++k) acc += t.weights[k] * src[y * w + t.first + k];
      tmp[static_cast<size_t>(y * out_w + x)] = static_cast<float>(acc);
    }
  Tensor out = Tensor::empty({out_h, out_w});
  float* dst = out.f32();
  for (int64_t y = 0; y < out_h; ++y) {
    const Tap& t = ty[static_cast<size_t>(y)];
    for (int64_t x = 0; x < out_w; ++x) {
      double acc = 0;
      for (size_t k = 0; k < t.weights.size(); ++k)
        acc += t.weights[k] * tmp[static_cast<size_t>((t.first + static_cast<int64_t>(k)) * out_w + x)];
      dst[y * out_w + x] = static_cast<float>(acc);
    }
  }
  return out;
}

}  // namespace

Tensor resize_plane(const Tensor& plane, int out_h, int out_w) { return resize(plane, out_h, out_w, "[resize_plane]"); }

Tensor resize_grey(const Tensor& image, int out_h, int out_w) {
  Tensor out = resize(image, out_h, out_w, "[resize_grey]");
  float* p = out.f32();
  for (int64_t i = 0; i < out.numel(); ++i) p[i] = std::clamp(p[i], 0.0f, 1.0f);
  return out;
}

Tensor load_image_grey(const std::string& path, int out_h, int out_w, int64_t max_pixels) {
  check_out_size("[image] " + path, out_h, out_w);
  const DecodedImage d = decode_image(io::read_file(path), path, max_pixels);
  Tensor grey = Tensor::empty({d.height, d.width});
  float* g = grey.f32();
  const uint8_t* p = d.pixels.data();
  const int64_t n = d.height * d.width;
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* px = p + i * d.channels;
    const float v = d.channels == 3 ? 0.299f * px[0] + 0.587f * px[1] + 0.114f * px[2] : px[0];  // BT.601 luma
    g[i] = v / 255.0f;
  }
  return resize_grey(grey, out_h, out_w);
}

void write_png_grey(const std::string& path, const Tensor& image) {
  check(image.defined() && image.rank() == 2 && image.dtype() == DType::kF32, "[image] ", path,
        ": write_png_grey expects a float32 (H, W) image, got ",
        image.defined() ? std::string(dtype_name(image.dtype())) + shape_str(image.shape())
                        : std::string("undefined"));
  const int64_t h = image.dim(0), w = image.dim(1);
  check(h >= 1 && w >= 1 && h <= kMaxSide && w <= kMaxSide, "[image] ", path,
        ": image size must be in [1, ", kMaxSide, "], got ", shape_str(image.shape()));
  std::vector<uint8_t> px(static_cast<size_t>(h * w));
  const float* src = image.f32();
  for (size_t i = 0; i < px.size(); ++i) {
    const float v = std::isfinite(src[i]) ? std::clamp(src[i], 0.0f, 1.0f) : 0.0f;
    px[i] = static_cast<uint8_t>(std::lround(v * 255.0f));
  }
  io::write_file_atomic(path, encode_png(px.data(), h, w, 1, path));
}

}  // namespace perceiver::data
