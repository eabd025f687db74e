// Random flip and shift augmentation for (H, W) images.
#include "perceiver/data/augment.h"

#include <algorithm>
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

void augment_image(float* image, int64_t h, int64_t w, const AugmentConfig& cfg, Rng& rng) {
  check(cfg.max_shift >= 0 && cfg.max_shift <= kMaxShift, "[augment] max_shift must be in [0, ",
        kMaxShift, "], got ", cfg.max_shift);
  if (cfg.hflip && rng.below(2) == 1) hflip_image(image, h, w);
  if (cfg.max_shift > 0) {
    const uint32_t span = 2u * static_cast<uint32_t>(cfg.max_shift) + 1u;
    const int64_t dy = static_cast<int64_t>(rng.below(span)) - cfg.max_shift;
    const int64_t dx = static_cast<int64_t>(rng.below(span)) - cfg.max_shift;
    shift_image(image, h, w, dy, dx);
  }
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

}  // namespace perceiver::data
