// The canvas and its 5 x 7 font (see data/raster.h).
#include "perceiver/data/raster.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace perceiver::data {
namespace {

// Each glyph: 7 rows of 5 bits, the leftmost pixel in bit 4.
struct Glyph {
  char c;
  uint8_t rows[7];
};

const Glyph kFont[] = {
    {'0', {14, 17, 19, 21, 25, 17, 14}}, {'1', {4, 12, 4, 4, 4, 4, 14}},   {'2', {14, 17, 1, 2, 4, 8, 31}},
    {'3', {31, 2, 4, 2, 1, 17, 14}},     {'4', {2, 6, 10, 18, 31, 2, 2}},  {'5', {31, 16, 30, 1, 1, 17, 14}},
    {'6', {6, 8, 16, 30, 17, 17, 14}},   {'7', {31, 1, 2, 4, 8, 8, 8}},    {'8', {14, 17, 17, 14, 17, 17, 14}},
    {'9', {14, 17, 17, 15, 1, 2, 12}},   {'a', {0, 0, 14, 1, 15, 17, 15}}, {'b', {16, 16, 22, 25, 17, 17, 30}},
    {'c', {0, 0, 14, 16, 16, 17, 14}},   {'d', {1, 1, 13, 19, 17, 17, 15}}, {'e', {0, 0, 14, 17, 31, 16, 14}},
    {'f', {6, 9, 8, 28, 8, 8, 8}},       {'g', {0, 15, 17, 17, 15, 1, 14}}, {'h', {16, 16, 22, 25, 17, 17, 17}},
    {'i', {4, 0, 12, 4, 4, 4, 14}},      {'j', {2, 0, 6, 2, 2, 18, 12}},   {'k', {16, 16, 18, 20, 24, 20, 18}},
    {'l', {12, 4, 4, 4, 4, 4, 14}},      {'m', {0, 0, 26, 21, 21, 17, 17}}, {'n', {0, 0, 22, 25, 17, 17, 17}},
    {'o', {0, 0, 14, 17, 17, 17, 14}},   {'p', {0, 0, 30, 17, 30, 16, 16}}, {'q', {0, 0, 13, 19, 15, 1, 1}},
    {'r', {0, 0, 22, 25, 16, 16, 16}},   {'s', {0, 0, 14, 16, 14, 1, 30}}, {'t', {8, 8, 28, 8, 8, 9, 6}},
    {'u', {0, 0, 17, 17, 17, 19, 13}},   {'v', {0, 0, 17, 17, 17, 10, 4}}, {'w', {0, 0, 17, 17, 21, 21, 10}},
    {'x', {0, 0, 17, 10, 4, 10, 17}},    {'y', {0, 0, 17, 17, 15, 1, 14}}, {'z', {0, 0, 31, 2, 4, 8, 31}},
    {'.', {0, 0, 0, 0, 0, 12, 12}},      {',', {0, 0, 0, 0, 12, 4, 8}},    {':', {0, 12, 12, 0, 12, 12, 0}},
    {'%', {24, 25, 2, 4, 8, 19, 3}},     {'-', {0, 0, 0, 31, 0, 0, 0}},    {'+', {0, 4, 4, 31, 4, 4, 0}},
    {'/', {0, 1, 2, 4, 8, 16, 0}},       {'(', {2, 4, 8, 8, 8, 4, 2}},     {')', {8, 4, 2, 2, 2, 4, 8}},
    {'=', {0, 0, 31, 0, 31, 0, 0}},      {' ', {0, 0, 0, 0, 0, 0, 0}},
};

const uint8_t* glyph(char c) {
  static const uint8_t box[7] = {31, 17, 17, 17, 17, 17, 31};
  if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  for (const Glyph& g : kFont)
    if (g.c == c) return g.rows;
  return box;
}

}  // namespace

Canvas::Canvas(int64_t width, int64_t height, Rgb background) {
  std::vector<uint8_t> px(static_cast<size_t>(width * height * 3));
  for (size_t i = 0; i < px.size(); i += 3) std::memcpy(&px[i], background.data(), 3);
  image_ = make_rgb_image(height, width, std::move(px));
}

void Canvas::pixel(int64_t x, int64_t y, Rgb c) {
  if (x < 0 || y < 0 || x >= image_.width || y >= image_.height) return;
  std::memcpy(&image_.pixels[static_cast<size_t>((y * image_.width + x) * 3)], c.data(), 3);
}

void Canvas::fill(int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb c) {
  for (int64_t y = std::max<int64_t>(0, y0); y <= std::min(y1, image_.height - 1); ++y)
    for (int64_t x = std::max<int64_t>(0, x0); x <= std::min(x1, image_.width - 1); ++x) pixel(x, y, c);
}

void Canvas::line(double x0, double y0, double x1, double y1, Rgb c, int thickness) {
  if (!std::isfinite(x0) || !std::isfinite(y0) || !std::isfinite(x1) || !std::isfinite(y1)) return;
  const double steps = std::max(std::fabs(x1 - x0), std::fabs(y1 - y0));
  const int n = static_cast<int>(std::min(steps, 1e5)) + 1;
  const int lo = -(thickness - 1) / 2, hi = thickness / 2;
  for (int i = 0; i <= n; ++i) {
    const double t = static_cast<double>(i) / n;
    const int64_t x = std::llround(x0 + t * (x1 - x0)), y = std::llround(y0 + t * (y1 - y0));
    for (int dy = lo; dy <= hi; ++dy)
      for (int dx = lo; dx <= hi; ++dx) pixel(x + dx, y + dy, c);
  }
}

int64_t Canvas::text_width(const std::string& s, int scale) { return static_cast<int64_t>(s.size()) * 6 * scale; }

int64_t Canvas::text(int64_t x, int64_t y, const std::string& s, Rgb c, int scale) {
  for (size_t k = 0; k < s.size(); ++k) {
    const uint8_t* rows = glyph(s[k]);
    for (int r = 0; r < 7; ++r)
      for (int b = 0; b < 5; ++b)
        if (rows[r] & (16 >> b)) fill(x + (static_cast<int64_t>(k) * 6 + b) * scale, y + r * scale,
                                       x + (static_cast<int64_t>(k) * 6 + b + 1) * scale - 1, y + (r + 1) * scale - 1, c);
  }
  return text_width(s, scale);
}

}  // namespace perceiver::data
