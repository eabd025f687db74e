// Random flip, shift and erasing augmentation for (H, W) images; rotation, scale and jitter for point clouds.
#include "perceiver/data/augment.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "perceiver/core/error.h"

namespace perceiver::data {
namespace {
constexpr int kMaxShift = 1 << 20;
}  // namespace

void shift_image(float* image, int64_t h, int64_t w, int64_t dy, int64_t dx) {
  if (dy == 0 && dx == 0) return;
  if (dy <= -h || dy >= h || dx <= -w || dx >= w) {
    std::fill(image, image + h * w, 0.0f);
    return;
  }
  // Walk rows in the direction that never overwrites a source row before it is read.
  const int64_t n = w - std::abs(dx);
  const int64_t src_x = std::max<int64_t>(0, -dx), dst_x = std::max<int64_t>(0, dx);
  auto move_row = [&](int64_t y) {
    float* dst = image + y * w;
    const int64_t sy = y - dy;
    if (sy < 0 || sy >= h) {
      std::fill(dst, dst + w, 0.0f);
      return;
    }
    std::memmove(dst + dst_x, image + sy * w + src_x, static_cast<size_t>(n) * sizeof(float));
    std::fill(dst, dst + dst_x, 0.0f);
    std::fill(dst + dst_x + n, dst + w, 0.0f);
  };
  if (dy >= 0) {
    for (int64_t y = h - 1; y >= 0; --y) move_row(y);  // sources lie above: go bottom-up
  } else {
    for (int64_t y = 0; y < h; ++y) move_row(y);
  }
}

void hflip_image(float* image, int64_t h, int64_t w) {
  for (int64_t y = 0; y < h; ++y) std::reverse(image + y * w, image + (y + 1) * w);
}

void erase_random_rectangle(float* image, int64_t h, int64_t w, Rng& rng) {
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double area = (0.02 + 0.38 * rng.uniform()) * static_cast<double>(h * w);
    const double aspect = std::exp(std::log(0.3) + (std::log(3.3) - std::log(0.3)) * rng.uniform());
    const int64_t eh = std::llround(std::sqrt(area * aspect)), ew = std::llround(std::sqrt(area / aspect));
    if (eh < 1 || ew < 1 || eh >= h || ew >= w) continue;
    const int64_t y0 = rng.below(static_cast<uint32_t>(h - eh + 1)), x0 = rng.below(static_cast<uint32_t>(w - ew + 1));
    for (int64_t y = y0; y < y0 + eh; ++y)
      for (int64_t x = x0; x < x0 + ew; ++x) image[y * w + x] = rng.uniform();
    return;
  }
}

void augment_image(float* image, int64_t h, int64_t w, const AugmentConfig& cfg, Rng& rng) {
  check(cfg.max_shift >= 0 && cfg.max_shift <= kMaxShift, "[augment] max_shift must be in [0, ",
        kMaxShift, "], got ", cfg.max_shift);
  check(cfg.erase_prob >= 0.0f && cfg.erase_prob <= 1.0f, "[augment] erase_prob must be in [0, 1], got ", cfg.erase_prob);
  if (cfg.hflip && rng.below(2) == 1) hflip_image(image, h, w);
  if (cfg.max_shift > 0) {
    const uint32_t span = 2u * static_cast<uint32_t>(cfg.max_shift) + 1u;
    const int64_t dy = static_cast<int64_t>(rng.below(span)) - cfg.max_shift;
    const int64_t dx = static_cast<int64_t>(rng.below(span)) - cfg.max_shift;
    shift_image(image, h, w, dy, dx);
  }
  if (cfg.erase_prob > 0.0f && rng.uniform() < cfg.erase_prob) erase_random_rectangle(image, h, w, rng);
}

void augment(Tensor& images, const AugmentConfig& cfg, Rng& rng) {
  check(images.defined() && images.dtype() == DType::kF32 &&
            (images.rank() == 2 || images.rank() == 3),
        "[augment] expected a float32 (H, W) or (B, H, W) tensor, got ",
        images.defined() ? std::string(dtype_name(images.dtype())) + shape_str(images.shape())
                         : std::string("undefined"));
  const int64_t b = images.rank() == 3 ? images.dim(0) : 1;
  const int64_t h = images.dim(-2), w = images.dim(-1);
  float* p = images.f32();
  for (int64_t i = 0; i < b; ++i) augment_image(p + i * h * w, h, w, cfg, rng);
}

void augment_time_shift(float* frames, int64_t t, int64_t f, int max_shift, Rng& rng) {
  if (max_shift <= 0) return;
  const int64_t d = static_cast<int64_t>(rng.below(static_cast<uint32_t>(2 * max_shift + 1))) - max_shift;
  shift_image(frames, t, f, d, 0);
}

void augment_points(float* xyz, int64_t n, const PointAugmentConfig& cfg, Rng& rng) {
  check(cfg.rotate == "none" || cfg.rotate == "z" || cfg.rotate == "xyz", "[augment] rotate must be none, z or xyz, got ",
        cfg.rotate);
  check(cfg.scale_min > 0 && cfg.scale_min <= cfg.scale_max && cfg.jitter >= 0, "[augment] expected 0 < scale_min <= "
        "scale_max and jitter >= 0, got ", cfg.scale_min, ", ", cfg.scale_max, ", ", cfg.jitter);
  // r = the rotation matrix (row-major), identity unless drawn
  double r[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  if (cfg.rotate == "z") {
    const double a = 2 * M_PI * rng.uniform(), c = std::cos(a), s = std::sin(a);
    const double z[9] = {c, -s, 0, s, c, 0, 0, 0, 1};
    std::copy(z, z + 9, r);
  } else if (cfg.rotate == "xyz") {
    // a unit quaternion (w, x, y, z) from 4 normals is uniform over rotations
    double q[4], norm = 0;
    for (double& v : q) {
      v = rng.normal();
      norm += v * v;
    }
    norm = std::sqrt(std::max(norm, 1e-30));
    const double w = q[0] / norm, x = q[1] / norm, y = q[2] / norm, z = q[3] / norm;
    const double m[9] = {1 - 2 * (y * y + z * z), 2 * (x * y - z * w),     2 * (x * z + y * w),
                         2 * (x * y + z * w),     1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
                         2 * (x * z - y * w),     2 * (y * z + x * w),     1 - 2 * (x * x + y * y)};
    std::copy(m, m + 9, r);
  }
  const double scale = cfg.scale_max > cfg.scale_min ? cfg.scale_min + (cfg.scale_max - cfg.scale_min) * rng.uniform()
                                                     : cfg.scale_min;
  for (int64_t i = 0; i < n; ++i) {
    float* p = xyz + 3 * i;
    const double v[3] = {p[0], p[1], p[2]};
    for (int k = 0; k < 3; ++k) p[k] = static_cast<float>(scale * (r[3 * k] * v[0] + r[3 * k + 1] * v[1] + r[3 * k + 2] * v[2]));
  }
  if (cfg.jitter > 0)
    for (int64_t i = 0; i < 3 * n; ++i) xyz[i] += cfg.jitter * rng.normal();
}

}  // namespace perceiver::data
