// Optical flow helpers: per-tile 3x3 patch features, tile layout and distance-to-edge blending,
// Middlebury .flo reading/writing, FlyingChairs-layout folders, end-point-error statistics,
// Baker et al. colour wheel, RGB PNG writing.
#include "perceiver/data/optical_flow.h"


#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "perceiver/core/error.h"
#include "perceiver/data/image_codec.h"
#include "perceiver/io/atomic_file.h"

namespace perceiver::data {
namespace {

constexpr float kFloMagic = 202021.25f;
constexpr int64_t kMaxFloSide = 1 << 16;
constexpr float kUnknownFlow = 1e9f;

void check_flow(const Tensor& flow, const std::string& who) {
  check(flow.defined() && flow.dtype() == DType::kF32 && flow.rank() == 3 && flow.dim(2) == 2 && flow.dim(0) >= 1 &&
            flow.dim(1) >= 1,
        "[optical_flow] ", who, ": expected a float32 (H, W, 2) flow, got ",
        flow.defined() ? std::string(dtype_name(flow.dtype())) + shape_str(flow.shape()) : std::string("undefined"));
}

// Baker et al.'s colour wheel: 55 hues, RY 15, YG 6, GC 4, CB 11, BM 13, MR 6 (integer steps).
std::vector<std::array<int, 3>> color_wheel() {
  std::vector<std::array<int, 3>> w;
  const int RY = 15, YG = 6, GC = 4, CB = 11, BM = 13, MR = 6;
  for (int i = 0; i < RY; ++i) w.push_back({255, 255 * i / RY, 0});
  for (int i = 0; i < YG; ++i) w.push_back({255 - 255 * i / YG, 255, 0});
  for (int i = 0; i < GC; ++i) w.push_back({0, 255, 255 * i / GC});
  for (int i = 0; i < CB; ++i) w.push_back({0, 255 - 255 * i / CB, 255});
  for (int i = 0; i < BM; ++i) w.push_back({255 * i / BM, 0, 255});
  for (int i = 0; i < MR; ++i) w.push_back({255, 0, 255 - 255 * i / MR});
  return w;
}

}  // namespace

bool flow_known(float u, float v) {
  return std::isfinite(u) && std::isfinite(v) && std::fabs(u) <= kUnknownFlow && std::fabs(v) <= kUnknownFlow;
}

Tensor flow_patch_features(const RgbImage& frame1, const RgbImage& frame2, int64_t top, int64_t left, int64_t h,
                           int64_t w) {
  check(frame1.height == frame2.height && frame1.width == frame2.width, "[optical_flow] the frames must have the same size, got ",
        frame1.height, " x ", frame1.width, " and ", frame2.height, " x ", frame2.width);
  check(top >= 0 && left >= 0 && h >= 1 && w >= 1 && top + h <= frame1.height && left + w <= frame1.width,
        "[optical_flow] patch window top ", top, " left ", left, " size ", h, " x ", w, " must lie inside the ",
        frame1.height, " x ", frame1.width, " frames");
  Tensor out = Tensor::zeros({2, 27, h, w});
  float* dst = out.f32();
  const int64_t hw = h * w;
  for (int f = 0; f < 2; ++f) {
    const RgbImage& img = f == 0 ? frame1 : frame2;
    for (int dy = 0; dy < 3; ++dy)
      for (int dx = 0; dx < 3; ++dx)
        for (int c = 0; c < 3; ++c) {
          float* plane = dst + (f * 27 + (dy * 3 + dx) * 3 + c) * hw;
          for (int64_t y = 0; y < h; ++y) {
            const int64_t sy = y + dy - 1;
            if (sy < 0 || sy >= h) continue;
            for (int64_t x = 0; x < w; ++x) {
              const int64_t sx = x + dx - 1;
              if (sx < 0 || sx >= w) continue;
              plane[y * w + x] = static_cast<float>(img.at(top + sy, left + sx, c)) / 255.0f * 2.0f - 1.0f;
            }
          }
        }
  }
  return out;
}

std::vector<std::pair<int64_t, int64_t>> flow_tile_origins(int64_t height, int64_t width, int64_t tile_h,
                                                           int64_t tile_w, int64_t min_overlap) {
  check(tile_h >= 1 && tile_w >= 1, "[optical_flow] tile size must be positive, got ", tile_h, " x ", tile_w);
  check(min_overlap >= 0 && min_overlap < tile_h && min_overlap < tile_w, "[optical_flow] min_overlap must be in [0, ",
        std::min(tile_h, tile_w), ") (smaller than the ", tile_h, " x ", tile_w, " tile), got ", min_overlap);
  check(height >= tile_h && width >= tile_w, "[optical_flow] the frames (", height, " x ", width,
        ") must be at least the model's train_size (", tile_h, " x ", tile_w, "); pad or resize them");
  auto starts = [](int64_t size, int64_t tile, int64_t overlap) {
    std::vector<int64_t> s;
    for (int64_t v = 0; v < size; v += tile - overlap) s.push_back(v);
    s.back() = size - tile;
    for (int64_t& v : s) v = std::min(v, size - tile);
    std::sort(s.begin(), s.end());
    s.erase(std::unique(s.begin(), s.end()), s.end());
    return s;
  };
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int64_t y : starts(height, tile_h, min_overlap))
    for (int64_t x : starts(width, tile_w, min_overlap)) out.emplace_back(y, x);
  return out;
}

Tensor tiled_flow(const RgbImage& frame1, const RgbImage& frame2, int64_t tile_h, int64_t tile_w, int64_t min_overlap,
                  const FlowModel& model, int64_t tiles_per_batch) {
  check(tiles_per_batch >= 1, "[optical_flow] tiles per batch must be >= 1, got ", tiles_per_batch);
  check(frame1.height == frame2.height && frame1.width == frame2.width, "[optical_flow] the frames must have the same size, got ",
        frame1.height, " x ", frame1.width, " and ", frame2.height, " x ", frame2.width);
  const int64_t H = frame1.height, W = frame1.width;
  const auto origins = flow_tile_origins(H, W, tile_h, tile_w, min_overlap);
  // Weighted sums in float64: a single tile's flow comes back bit for bit (f * w / w == f).
  std::vector<double> sum(static_cast<size_t>(H * W * 2), 0.0), weight(static_cast<size_t>(H * W), 0.0);
  const int64_t feat = 2 * 27 * tile_h * tile_w;
  for (size_t first = 0; first < origins.size(); first += static_cast<size_t>(tiles_per_batch)) {
    const size_t n = std::min(origins.size() - first, static_cast<size_t>(tiles_per_batch));
    Tensor batch = Tensor::empty({static_cast<int64_t>(n), 2, 27, tile_h, tile_w});
    for (size_t i = 0; i < n; ++i) {
      const auto [y0, x0] = origins[first + i];
      const Tensor f = flow_patch_features(frame1, frame2, y0, x0, tile_h, tile_w);
      std::copy_n(f.f32(), feat, batch.f32() + static_cast<int64_t>(i) * feat);
    }
    const Tensor flow = model(batch);
    check(flow.defined() && flow.dtype() == DType::kF32 && flow.shape() == Shape{static_cast<int64_t>(n), tile_h, tile_w, 2},
          "[optical_flow] the model must return float32 (", n, ", ", tile_h, ", ", tile_w, ", 2) flows, got ",
          flow.defined() ? shape_str(flow.shape()) : std::string("undefined"));
    for (size_t i = 0; i < n; ++i) {
      const auto [y0, x0] = origins[first + i];
      const float* f = flow.f32() + static_cast<int64_t>(i) * tile_h * tile_w * 2;
      for (int64_t y = 0; y < tile_h; ++y)
        for (int64_t x = 0; x < tile_w; ++x) {
          const double wgt = static_cast<double>(std::min({y + 1, tile_h - y, x + 1, tile_w - x}));
          const size_t p = static_cast<size_t>((y0 + y) * W + x0 + x);
          sum[2 * p] += wgt * f[(y * tile_w + x) * 2];
          sum[2 * p + 1] += wgt * f[(y * tile_w + x) * 2 + 1];
          weight[p] += wgt;
        }
    }
  }
  Tensor out = Tensor::empty({H, W, 2});
  for (size_t p = 0; p < weight.size(); ++p) {
    out.f32()[2 * p] = static_cast<float>(sum[2 * p] / weight[p]);
    out.f32()[2 * p + 1] = static_cast<float>(sum[2 * p + 1] / weight[p]);
  }
  return out;
}

void write_flo(const std::string& path, const Tensor& flow) {
  check_flow(flow, path);
  const int64_t h = flow.dim(0), w = flow.dim(1);
  check(h <= kMaxFloSide && w <= kMaxFloSide, "[flo] ", path, ": flow size must be at most ", kMaxFloSide, " a side, got ",
        h, " x ", w);
  std::string bytes(12 + static_cast<size_t>(h * w * 2) * 4, '\0');
  const int32_t dims[2] = {static_cast<int32_t>(w), static_cast<int32_t>(h)};
  std::memcpy(&bytes[0], &kFloMagic, 4);
  std::memcpy(&bytes[4], dims, 8);
  std::memcpy(&bytes[12], flow.f32(), static_cast<size_t>(h * w * 2) * 4);
  io::write_file_atomic(path, bytes);
}

Tensor read_flo(const std::string& path) {
  const std::string bytes = io::read_file(path);
  check(bytes.size() >= 12, "[flo] ", path, ": expected a 12-byte header, got a ", bytes.size(), "-byte file");
  float magic = 0;
  int32_t dims[2] = {0, 0};
  std::memcpy(&magic, bytes.data(), 4);
  std::memcpy(dims, bytes.data() + 4, 8);
  check(magic == kFloMagic, "[flo] ", path, ": expected the magic number 202021.25 (\"PIEH\"), got ", magic);
  const int64_t w = dims[0], h = dims[1];
  check(w >= 1 && h >= 1 && w <= kMaxFloSide && h <= kMaxFloSide, "[flo] ", path, ": expected width and height in [1, ",
        kMaxFloSide, "], got ", w, " x ", h);
  const size_t expected = 12 + static_cast<size_t>(w * h * 2) * 4;
  check(bytes.size() == expected, "[flo] ", path, ": a ", w, " x ", h, " flow needs ", expected, " bytes, got ", bytes.size());
  Tensor flow = Tensor::empty({h, w, 2});
  std::memcpy(flow.f32(), bytes.data() + 12, expected - 12);
  return flow;
}

RgbImage flow_to_color(const Tensor& flow, float max_flow) {
  check_flow(flow, "flow_to_color");
  const int64_t h = flow.dim(0), w = flow.dim(1), n = h * w;
  const float* f = flow.f32();
  float max_rad = max_flow;
  if (!(max_rad > 0)) {
    max_rad = 0;
    for (int64_t i = 0; i < n; ++i)
      if (flow_known(f[2 * i], f[2 * i + 1])) max_rad = std::max(max_rad, std::sqrt(f[2 * i] * f[2 * i] + f[2 * i + 1] * f[2 * i + 1]));
    if (max_rad == 0) max_rad = 1;
  }
  static const std::vector<std::array<int, 3>> wheel = color_wheel();
  const int ncols = static_cast<int>(wheel.size());
  RgbImage out{h, w, std::vector<uint8_t>(static_cast<size_t>(n * 3), 0)};
  for (int64_t i = 0; i < n; ++i) {
    if (!flow_known(f[2 * i], f[2 * i + 1])) continue;  // black
    const float fx = f[2 * i] / max_rad, fy = f[2 * i + 1] / max_rad;
    const float rad = std::sqrt(fx * fx + fy * fy);
    const float a = static_cast<float>(std::atan2(-fy, -fx) / M_PI);
    const float fk = (a + 1.0f) / 2.0f * static_cast<float>(ncols - 1);
    const int k0 = static_cast<int>(fk);
    const int k1 = (k0 + 1) % ncols;
    const float frac = fk - static_cast<float>(k0);
    for (int b = 0; b < 3; ++b) {
      const float col0 = static_cast<float>(wheel[static_cast<size_t>(k0)][static_cast<size_t>(b)]) / 255.0f;
      const float col1 = static_cast<float>(wheel[static_cast<size_t>(k1)][static_cast<size_t>(b)]) / 255.0f;
      float col = (1 - frac) * col0 + frac * col1;
      if (rad <= 1)
        col = 1 - rad * (1 - col);  // more saturated further out
      else
        col *= 0.75f;  // beyond max_flow
      out.pixels[static_cast<size_t>(i * 3 + b)] = static_cast<uint8_t>(std::clamp(255.0 * col, 0.0, 255.0));
    }
  }
  return out;
}

void write_png_rgb(const std::string& path, const RgbImage& image) {
  check(image.height >= 1 && image.width >= 1 && image.height <= kMaxFloSide && image.width <= kMaxFloSide &&
            image.pixels.size() == static_cast<size_t>(image.height * image.width * 3),
        "[image] ", path, ": expected an RGB image of 1 to ", kMaxFloSide, " pixels a side, got ", image.height, " x ",
        image.width);
  io::write_file_atomic(path, encode_png(image.pixels.data(), image.height, image.width, 3, path));
}

void FlowErrors::merge(const FlowErrors& o) {
  pairs += o.pairs;
  known += o.known;
  epe_sum += o.epe_sum;
  under1 += o.under1;
  under3 += o.under3;
}

void add_flow_errors(const Tensor& pred, const Tensor& gt, FlowErrors& e) {
  check(pred.defined() && gt.defined() && pred.dtype() == DType::kF32 && gt.dtype() == DType::kF32 && pred.rank() >= 3 &&
            pred.dim(-1) == 2 && pred.shape() == gt.shape(),
        "[optical_flow] flow errors: expected float32 prediction and ground truth of one shape (..., H, W, 2), got ",
        pred.defined() ? shape_str(pred.shape()) : "undefined", " and ", gt.defined() ? shape_str(gt.shape()) : "undefined");
  const int64_t rows = pred.numel() / 2;
  const float* p = pred.f32();
  const float* g = gt.f32();
  for (int64_t r = 0; r < rows; ++r) {
    if (!flow_known(g[2 * r], g[2 * r + 1])) continue;
    const double du = static_cast<double>(p[2 * r]) - g[2 * r], dv = static_cast<double>(p[2 * r + 1]) - g[2 * r + 1];
    const double epe = std::isfinite(du) && std::isfinite(dv) ? std::sqrt(du * du + dv * dv) : INFINITY;
    e.epe_sum += epe;
    e.known += 1;
    e.under1 += epe < 1.0;
    e.under3 += epe < 3.0;
  }
  e.pairs += pred.numel() / (pred.dim(-3) * pred.dim(-2) * 2);
}

std::vector<FlowPairFiles> list_flow_pairs(const std::string& dir) {
  namespace fs = std::filesystem;
  check(fs::is_directory(dir), "[optical_flow] ", dir, ": expected a folder of NAME_img1.png, NAME_img2.png and "
        "NAME_flow.flo files (FlyingChairs layout)");
  // name -> the three files, as found
  std::map<std::string, FlowPairFiles> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string file = entry.path().filename().string(), path = entry.path().string();
    const size_t us = file.rfind('_');
    if (us == std::string::npos) continue;
    const std::string name = file.substr(0, us), rest = file.substr(us + 1);
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
    const std::string stem = rest.substr(0, rest.size() - ext.size());
    const bool image = ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".ppm" || ext == ".pgm";
    FlowPairFiles& f = found[name];
    f.name = name;
    std::string* slot = stem == "img1" && image ? &f.frame1 : stem == "img2" && image ? &f.frame2
                        : stem == "flow" && ext == ".flo" ? &f.flow : nullptr;
    if (!slot) continue;
    if (!slot->empty())
      throw_error("[optical_flow] ", dir, ": the pair \"", name, "\" has two ", stem, " files (", *slot, " and ", path,
                  "); keep one");
    *slot = path;
  }
  std::vector<FlowPairFiles> pairs;
  for (auto& [name, f] : found) {
    if (f.frame1.empty() && f.frame2.empty() && f.flow.empty()) continue;  // another file with an underscore
    const char* missing = f.frame1.empty() ? "_img1 image" : f.frame2.empty() ? "_img2 image" : f.flow.empty() ? "_flow.flo" : nullptr;
    if (missing) throw_error("[optical_flow] ", dir, ": the pair \"", name, "\" has no ", name, missing);
    pairs.push_back(f);
  }
  check(!pairs.empty(), "[optical_flow] ", dir, ": no pairs found (expected NAME_img1.png, NAME_img2.png and NAME_flow.flo)");
  return pairs;
}

FlowExample read_flow_pair(const FlowPairFiles& f, int64_t max_pixels) {
  // one member at a time: GCC 12 destroys members twice when a throw interrupts aggregate
  // initialisation (GCC bug 66139)
  FlowExample e;
  e.frame1 = load_image_rgb(f.frame1, max_pixels);
  e.frame2 = load_image_rgb(f.frame2, max_pixels);
  e.flow = read_flo(f.flow);
  check(e.frame1.height == e.frame2.height && e.frame1.width == e.frame2.width, "[optical_flow] ", f.frame1, " (",
        e.frame1.height, " x ", e.frame1.width, ") and ", f.frame2, " (", e.frame2.height, " x ", e.frame2.width,
        ") differ in size");
  check(e.flow.dim(0) == e.frame1.height && e.flow.dim(1) == e.frame1.width, "[optical_flow] ", f.flow, " holds a ",
        e.flow.dim(0), " x ", e.flow.dim(1), " flow for ", e.frame1.height, " x ", e.frame1.width, " frames");
  return e;
}

void write_flow_pair(const std::string& dir, const std::string& name, const RgbImage& frame1, const RgbImage& frame2,
                     const Tensor& flow) {
  write_png_rgb(dir + "/" + name + "_img1.png", frame1);
  write_png_rgb(dir + "/" + name + "_img2.png", frame2);
  write_flo(dir + "/" + name + "_flow.flo", flow);
}

}  // namespace perceiver::data
