// A small RGB canvas for the pictures the library draws itself (training plots): filled
// rectangles, lines, and text in a built-in 5 x 7 pixel font (digits, lower-case letters and
// . , : % - + / ( ) = and space; anything else is drawn as a box).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "perceiver/data/image_processor.h"

namespace perceiver::data {

using Rgb = std::array<uint8_t, 3>;

class Canvas {
 public:
  Canvas(int64_t width, int64_t height, Rgb background);
  int64_t width() const { return image_.width; }
  int64_t height() const { return image_.height; }
  void pixel(int64_t x, int64_t y, Rgb c);  // clipped to the canvas
  void fill(int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb c);  // [x0, x1] x [y0, y1]
  void line(double x0, double y0, double x1, double y1, Rgb c, int thickness = 1);
  // Text with its top-left corner at (x, y), each font pixel scale x scale; returns the width.
  int64_t text(int64_t x, int64_t y, const std::string& s, Rgb c, int scale = 1);
  static int64_t text_width(const std::string& s, int scale = 1);
  const RgbImage& image() const { return image_; }

 private:
  RgbImage image_;
};

}  // namespace perceiver::data
