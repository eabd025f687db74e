// FlyingChairs-style synthetic flow pairs: asset loading (background scaling, sprite area
// averaging), layer placement and motion as affine maps, inverse-mapped rendering, exact flow
// and visibility from the top-most layer.
#include "perceiver/data/flow_synth.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "perceiver/core/error.h"
#include "perceiver/data/image_codec.h"
#include "perceiver/io/atomic_file.h"

namespace perceiver::data {
namespace {

namespace fs = std::filesystem;

// Assets are decoded (and backgrounds scaled) up to this many pixels: 16 MP (sprites as float
// RGBA: 256 MB at most).
constexpr int64_t kMaxAssetPixels = int64_t(1) << 24;

// (x, y) -> (a x + b y + tx, c x + d y + ty)
struct Affine {
  double a = 1, b = 0, c = 0, d = 1, tx = 0, ty = 0;
  void apply(double x, double y, double& ox, double& oy) const {
    ox = a * x + b * y + tx;
    oy = c * x + d * y + ty;
  }
  Affine inverse() const {
    const double det = a * d - b * c;  // non-zero: scales are > 0
    Affine r{d / det, -b / det, -c / det, a / det, 0, 0};
    r.tx = -(r.a * tx + r.b * ty);
    r.ty = -(r.c * tx + r.d * ty);
    return r;
  }
  // this after other: x -> this(other(x))
  Affine after(const Affine& o) const {
    return {a * o.a + b * o.c, a * o.b + b * o.d, c * o.a + d * o.c, c * o.b + d * o.d, a * o.tx + b * o.ty + tx,
            c * o.tx + d * o.ty + ty};
  }
};

// Maps p to to + s R(theta) (p - from).
Affine similarity(double from_x, double from_y, double to_x, double to_y, double s, double theta) {
  const double cs = s * std::cos(theta), sn = s * std::sin(theta);
  Affine m{cs, -sn, sn, cs, 0, 0};
  m.tx = to_x - (m.a * from_x + m.b * from_y);
  m.ty = to_y - (m.c * from_x + m.d * from_y);
  return m;
}

double uniform_in(Rng& rng, double lo, double hi) { return lo + (hi - lo) * rng.uniform(); }

// A motion about (cx, cy): translation (tx, ty) in [-t, t]^2, scale 1 + ds with ds in [-s, s],
// rotation in [-r, r]; drawn in that order.
Affine random_motion(Rng& rng, double cx, double cy, double t, double r, double s) {
  const double tx = uniform_in(rng, -t, t), ty = uniform_in(rng, -t, t);
  const double ds = uniform_in(rng, -s, s), dr = uniform_in(rng, -r, r);
  return similarity(cx, cy, cx + tx, cy + ty, 1 + ds, dr);
}

std::vector<std::string> image_files(const std::string& dir, const char* what) {
  check(fs::is_directory(dir), "[flow_synth] ", dir, ": expected a folder of ", what, " (see scripts/fetch_flow_data.sh)");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (ext == ".png" || ext == ".jpg" || ext == ".jpeg") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  check(!files.empty(), "[flow_synth] ", dir, ": no .png or .jpg ", what, " found");
  return files;
}

// Area-averaging downscale of premultiplied RGBA by an integer-free box filter: each output
// pixel averages the source rectangle it covers (fractional edges weighted).
RgbaImage area_downscale(const RgbaImage& src, int64_t oh, int64_t ow) {
  RgbaImage out{oh, ow, std::vector<float>(static_cast<size_t>(oh * ow * 4), 0.0f)};
  const double sy = static_cast<double>(src.height) / oh, sx = static_cast<double>(src.width) / ow;
  for (int64_t y = 0; y < oh; ++y) {
    const double y0 = y * sy, y1 = (y + 1) * sy;
    for (int64_t x = 0; x < ow; ++x) {
      const double x0 = x * sx, x1 = (x + 1) * sx;
      double acc[4] = {0, 0, 0, 0}, area = 0;
      for (int64_t yy = static_cast<int64_t>(y0); yy < std::min<int64_t>(src.height, static_cast<int64_t>(std::ceil(y1))); ++yy) {
        const double wy = std::min<double>(yy + 1, y1) - std::max<double>(yy, y0);
        for (int64_t xx = static_cast<int64_t>(x0); xx < std::min<int64_t>(src.width, static_cast<int64_t>(std::ceil(x1))); ++xx) {
          const double wgt = wy * (std::min<double>(xx + 1, x1) - std::max<double>(xx, x0));
          const float* p = src.pixels.data() + (yy * src.width + xx) * 4;
          for (int k = 0; k < 4; ++k) acc[k] += wgt * p[k];
          area += wgt;
        }
      }
      float* o = out.pixels.data() + (y * ow + x) * 4;
      for (int k = 0; k < 4; ++k) o[k] = area > 0 ? static_cast<float>(acc[k] / area) : 0.0f;
    }
  }
  return out;
}

RgbaImage load_sprite(const std::string& path, int64_t max_side) {
  const DecodedImage d = decode_image_rgba(io::read_file(path), path, kMaxAssetPixels);
  RgbaImage s{d.height, d.width, std::vector<float>(static_cast<size_t>(d.height * d.width * 4))};
  for (int64_t i = 0; i < d.height * d.width; ++i) {
    const float a = d.pixels[static_cast<size_t>(i * 4 + 3)] / 255.0f;
    for (int k = 0; k < 3; ++k) s.pixels[static_cast<size_t>(i * 4 + k)] = a * d.pixels[static_cast<size_t>(i * 4 + k)] / 255.0f;
    s.pixels[static_cast<size_t>(i * 4 + 3)] = a;
  }
  const int64_t side = std::max(d.height, d.width);
  if (side <= max_side) return s;
  const double f = static_cast<double>(max_side) / side;
  return area_downscale(s, std::max<int64_t>(1, std::llround(d.height * f)), std::max<int64_t>(1, std::llround(d.width * f)));
}

RgbImage load_background(const std::string& path, int64_t shorter_side) {
  const DecodedImage d = decode_image(io::read_file(path), path, kMaxAssetPixels);
  std::vector<uint8_t> rgb(static_cast<size_t>(d.height * d.width * 3));
  for (int64_t i = 0; i < d.height * d.width; ++i)
    for (int k = 0; k < 3; ++k) rgb[static_cast<size_t>(i * 3 + k)] = d.pixels[static_cast<size_t>(i * d.channels + (d.channels == 1 ? 0 : k))];
  RgbImage img = make_rgb_image(d.height, d.width, std::move(rgb));
  const double f = static_cast<double>(shorter_side) / std::min(d.height, d.width);
  const int64_t oh = std::max<int64_t>(1, std::llround(d.height * f)), ow = std::max<int64_t>(1, std::llround(d.width * f));
  check(oh * ow <= kMaxAssetPixels, "[flow_synth] ", path, ": scaling this ", d.height, " x ", d.width, " image to a shorter "
        "side of ", shorter_side, " gives ", oh, " x ", ow, " pixels, more than ", kMaxAssetPixels, "; use photographs of a "
        "less extreme aspect ratio (or smaller frames)");
  return pillow_resize(img, oh, ow, Resample::kBilinear);
}

// Bilinear sample of premultiplied RGBA at (x, y) (pixel centres at integers), zero outside.
void sample_sprite(const RgbaImage& s, double x, double y, float out[4]) {
  out[0] = out[1] = out[2] = out[3] = 0.0f;
  if (x <= -1 || y <= -1 || x >= s.width || y >= s.height) return;
  const int64_t x0 = static_cast<int64_t>(std::floor(x)), y0 = static_cast<int64_t>(std::floor(y));
  const float fx = static_cast<float>(x - x0), fy = static_cast<float>(y - y0);
  for (int j = 0; j < 2; ++j) {
    const int64_t yy = y0 + j;
    if (yy < 0 || yy >= s.height) continue;
    const float wy = j ? fy : 1.0f - fy;
    for (int i = 0; i < 2; ++i) {
      const int64_t xx = x0 + i;
      if (xx < 0 || xx >= s.width) continue;
      const float w = wy * (i ? fx : 1.0f - fx);
      const float* p = s.pixels.data() + (yy * s.width + xx) * 4;
      for (int k = 0; k < 4; ++k) out[k] += w * p[k];
    }
  }
}

// Bilinear sample of an RGB image at (x, y), clamped to the border; colour in [0, 1].
void sample_background(const RgbImage& b, double x, double y, float out[3]) {
  x = std::clamp(x, 0.0, static_cast<double>(b.width - 1));
  y = std::clamp(y, 0.0, static_cast<double>(b.height - 1));
  const int64_t x0 = std::min<int64_t>(static_cast<int64_t>(x), b.width - 1), y0 = std::min<int64_t>(static_cast<int64_t>(y), b.height - 1);
  const int64_t x1 = std::min<int64_t>(x0 + 1, b.width - 1), y1 = std::min<int64_t>(y0 + 1, b.height - 1);
  const float fx = static_cast<float>(x - x0), fy = static_cast<float>(y - y0);
  for (int k = 0; k < 3; ++k) {
    const float top = (1 - fx) * b.at(y0, x0, k) + fx * b.at(y0, x1, k);
    const float bottom = (1 - fx) * b.at(y1, x0, k) + fx * b.at(y1, x1, k);
    out[k] = ((1 - fy) * top + fy * bottom) / 255.0f;
  }
}

// One layer: its image, canvas -> image placement in frame 1, and its motion frame 1 -> frame 2.
struct Layer {
  const RgbImage* background = nullptr;  // layer 0
  const RgbaImage* sprite = nullptr;     // layers 1..
  Affine place, motion, place2;          // place2 = place after inverse(motion): frame-2 canvas -> image
  uint64_t texture_seed = 0;             // the layer's noise (FlowSynthOptions::texture > 0)
  double texture_cell = 0;               // its finest cell in image pixels
};

// A lattice value in [0, 1) for cell (ix, iy), channel c of one layer's noise (a splitmix64 hash).
float lattice(uint64_t seed, int64_t ix, int64_t iy, int c) {
  uint64_t z = seed ^ (static_cast<uint64_t>(ix) * 0x9E3779B97F4A7C15ull) ^ (static_cast<uint64_t>(iy) * 0xC2B2AE3D27D4EB4Full) ^
               (static_cast<uint64_t>(c + 1) * 0x165667B19E3779F9ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) / static_cast<float>(1ull << 24);
}

// Value noise of one layer at image point (x, y): lattice values at cell corners, blended with
// smoothstep weights; octaves of 1x, 2x, 4x the cell weighted 0.5, 0.3, 0.2. rgb in [0, 1].
void layer_texture(const Layer& l, double x, double y, float rgb[3]) {
  static constexpr double kScale[3] = {1, 2, 4};
  static constexpr float kWeight[3] = {0.5f, 0.3f, 0.2f};
  rgb[0] = rgb[1] = rgb[2] = 0.0f;
  for (int o = 0; o < 3; ++o) {
    const double cell = l.texture_cell * kScale[o];
    const double gx = x / cell, gy = y / cell;
    const double fx0 = std::floor(gx), fy0 = std::floor(gy);
    const auto ix = static_cast<int64_t>(fx0), iy = static_cast<int64_t>(fy0);
    const auto smooth = [](double t) { return static_cast<float>(t * t * (3 - 2 * t)); };
    const float wx = smooth(gx - fx0), wy = smooth(gy - fy0);
    const uint64_t seed = l.texture_seed + static_cast<uint64_t>(o) * 0x632BE59BD9B4E019ull;
    for (int c = 0; c < 3; ++c) {
      const float top = (1 - wx) * lattice(seed, ix, iy, c) + wx * lattice(seed, ix + 1, iy, c);
      const float bottom = (1 - wx) * lattice(seed, ix, iy + 1, c) + wx * lattice(seed, ix + 1, iy + 1, c);
      rgb[c] += kWeight[o] * ((1 - wy) * top + wy * bottom);
    }
  }
}

// Alpha of sprite layer l at canvas point (x, y) through placement m.
float sprite_alpha(const Layer& l, const Affine& m, double x, double y) {
  double sx, sy;
  m.apply(x, y, sx, sy);
  float px[4];
  sample_sprite(*l.sprite, sx, sy, px);
  return px[3];
}

// Composites every layer at canvas (x, y) of one frame (frame 2 uses place2) into rgb in [0, 1].
// texture: the blend weight of each layer's noise (0: none).
void composite(const std::vector<Layer>& layers, float texture, bool second, double x, double y, float rgb[3]) {
  double sx, sy;
  float noise[3];
  const Layer& bg = layers[0];
  (second ? bg.place2 : bg.place).apply(x, y, sx, sy);
  sample_background(*bg.background, sx, sy, rgb);
  if (texture > 0) {
    layer_texture(bg, sx, sy, noise);
    for (int c = 0; c < 3; ++c) rgb[c] = (1 - texture) * rgb[c] + texture * noise[c];
  }
  for (size_t k = 1; k < layers.size(); ++k) {
    (second ? layers[k].place2 : layers[k].place).apply(x, y, sx, sy);
    float px[4];
    sample_sprite(*layers[k].sprite, sx, sy, px);
    if (texture > 0 && px[3] > 0) {  // premultiplied: the noise is scaled by the sprite's alpha
      layer_texture(layers[k], sx, sy, noise);
      for (int c = 0; c < 3; ++c) px[c] = (1 - texture) * px[c] + texture * px[3] * noise[c];
    }
    for (int c = 0; c < 3; ++c) rgb[c] = px[c] + (1.0f - px[3]) * rgb[c];  // premultiplied "over"
  }
}

// The top-most layer whose alpha at canvas (x, y) is >= 0.5 (0: the background).
size_t top_layer(const std::vector<Layer>& layers, bool second, double x, double y) {
  for (size_t k = layers.size() - 1; k >= 1; --k)
    if (sprite_alpha(layers[k], second ? layers[k].place2 : layers[k].place, x, y) >= 0.5f) return k;
  return 0;
}

uint8_t to_u8(float v) { return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0f, 1.0f) * 255.0f)); }

}  // namespace

FlowAssets load_flow_assets(const std::string& dir, const FlowAssetOptions& o) {
  check(o.background_side >= 8 && o.sprite_side >= 4, "[flow_synth] background_side must be >= 8 and sprite_side >= 4, got ",
        o.background_side, " and ", o.sprite_side);
  FlowAssets a;
  a.background_files = image_files(dir + "/backgrounds", "background photographs");
  a.sprite_files = image_files(dir + "/sprites", "RGBA sprites");
  if (o.max_sprites > 0 && static_cast<int64_t>(a.sprite_files.size()) > o.max_sprites) a.sprite_files.resize(o.max_sprites);
  for (const auto& f : a.background_files) a.backgrounds.push_back(load_background(f, o.background_side));
  for (const auto& f : a.sprite_files) a.sprites.push_back(load_sprite(f, o.sprite_side));
  return a;
}

void check_flow_synth_options(const FlowSynthOptions& o) {
  check(o.height >= 1 && o.width >= 1, "[flow_synth] the frame size must be positive, got ", o.height, " x ", o.width);
  check(o.min_sprites >= 0 && o.min_sprites <= o.max_sprites && o.max_sprites <= 64, "[flow_synth] expected 0 <= "
        "min_sprites <= max_sprites <= 64, got ", o.min_sprites, " and ", o.max_sprites);
  check(o.sprite_min_size > 0 && o.sprite_min_size <= o.sprite_max_size && o.sprite_max_size <= 4, "[flow_synth] expected "
        "0 < sprite_min_size <= sprite_max_size <= 4, got ", o.sprite_min_size, " and ", o.sprite_max_size);
  for (float v : {o.background_translation, o.background_rotation, o.sprite_translation, o.sprite_rotation})
    check(v >= 0 && std::isfinite(v), "[flow_synth] motion ranges must be finite and >= 0, got ", v);
  check(o.background_scale >= 0 && o.background_scale < 0.5 && o.sprite_scale >= 0 && o.sprite_scale < 0.5,
        "[flow_synth] background_scale and sprite_scale must be in [0, 0.5), got ", o.background_scale, " and ", o.sprite_scale);
  check(o.texture >= 0 && o.texture <= 1, "[flow_synth] texture must be in [0, 1], got ", o.texture);
  check(o.texture_cell >= 0.25f && o.texture_cell <= 64, "[flow_synth] texture_cell must be in [0.25, 64] pixels, got ",
        o.texture_cell);
}

FlowPair synthesize_flow_pair(const FlowAssets& assets, const FlowSynthOptions& o, Rng& rng) {
  check_flow_synth_options(o);
  check(!assets.backgrounds.empty(), "[flow_synth] no background images loaded");
  check(o.max_sprites == 0 || !assets.sprites.empty(), "[flow_synth] no sprites loaded");
  const int64_t h = o.height, w = o.width;
  const double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
  std::vector<Layer> layers;
  {
    // background: a random view (scale, small rotation) of a random photograph
    Layer bg;
    bg.background = &assets.backgrounds[rng.below(static_cast<uint32_t>(assets.backgrounds.size()))];
    const double s = uniform_in(rng, 0.8, 1.25), theta = uniform_in(rng, -0.1, 0.1);
    // the view's centre far enough inside the photograph that both frames stay within it (the
    // border is clamped only when the photograph is too small for that)
    // (frame 2 sees the view moved by up to the translation, scaled by up to 1 / (1 - scale) and
    // rotated by up to the rotation)
    const double reach = std::hypot(cx, cy);
    const double margin =
        s * ((reach + o.background_translation) / (1 - o.background_scale) + reach * o.background_rotation + 2);
    const auto centre_in = [&](int64_t side) {
      const double lo = margin, hi = side - 1 - margin;
      return lo <= hi ? uniform_in(rng, lo, hi) : (side - 1) / 2.0;
    };
    const double ix = centre_in(bg.background->width), iy = centre_in(bg.background->height);
    bg.place = similarity(cx, cy, ix, iy, s, theta);
    bg.motion = random_motion(rng, cx, cy, o.background_translation, o.background_rotation, o.background_scale);
    bg.texture_cell = o.texture_cell * s;  // s image px per canvas px
    layers.push_back(bg);
  }
  const int n = o.min_sprites + static_cast<int>(rng.below(static_cast<uint32_t>(o.max_sprites - o.min_sprites + 1)));
  for (int k = 0; k < n; ++k) {
    Layer l;
    l.sprite = &assets.sprites[rng.below(static_cast<uint32_t>(assets.sprites.size()))];
    const double side = uniform_in(rng, o.sprite_min_size, o.sprite_max_size) * std::min(h, w);
    const double s = static_cast<double>(std::max(l.sprite->height, l.sprite->width)) / side;  // image px per canvas px
    const double theta = uniform_in(rng, 0, 2 * M_PI);
    const double px = uniform_in(rng, 0, w - 1), py = uniform_in(rng, 0, h - 1);  // the sprite's centre on the canvas
    l.place = similarity(px, py, (l.sprite->width - 1) / 2.0, (l.sprite->height - 1) / 2.0, s, theta);
    l.motion = random_motion(rng, px, py, o.sprite_translation, o.sprite_rotation, o.sprite_scale);
    l.texture_cell = o.texture_cell * s;
    layers.push_back(l);
  }
  for (Layer& l : layers) {
    l.place2 = l.place.after(l.motion.inverse());
    if (o.texture > 0) l.texture_seed = (uint64_t{rng.next_u32()} << 32) | rng.next_u32();  // drawn only then: texture 0 keeps the untextured pairs
  }

  FlowPair p;
  std::vector<uint8_t> f1(static_cast<size_t>(h * w * 3)), f2(f1.size());
  p.flow = Tensor::empty({h, w, 2});
  p.visible.assign(static_cast<size_t>(h * w), 0);
  float* flow = p.flow.f32();
  uint8_t* vis = p.visible.data();
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const int64_t i = y * w + x;
      float rgb[3];
      composite(layers, o.texture, false, x, y, rgb);
      for (int c = 0; c < 3; ++c) f1[static_cast<size_t>(i * 3 + c)] = to_u8(rgb[c]);
      composite(layers, o.texture, true, x, y, rgb);
      for (int c = 0; c < 3; ++c) f2[static_cast<size_t>(i * 3 + c)] = to_u8(rgb[c]);
      // flow: the motion of the top-most layer; visible if that layer is top-most where it lands
      const size_t top = top_layer(layers, false, x, y);
      double qx, qy;
      layers[top].motion.apply(x, y, qx, qy);
      flow[2 * i] = static_cast<float>(qx - x);
      flow[2 * i + 1] = static_cast<float>(qy - y);
      const bool inside = qx >= -0.5 && qy >= -0.5 && qx <= w - 0.5 && qy <= h - 0.5;
      vis[i] = inside && top_layer(layers, true, qx, qy) == top;
    }
  p.frame1 = make_rgb_image(h, w, std::move(f1));
  p.frame2 = make_rgb_image(h, w, std::move(f2));
  return p;
}

}  // namespace perceiver::data
