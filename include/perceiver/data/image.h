// Image files to model inputs: decode a PNG, JPEG or binary PGM/PPM (data/image_codec.h), convert colour to grey
// with ITU-R BT.601 luma (transparency is dropped), resize with an area filter
// when shrinking (antialiased) and bilinear interpolation when enlarging. Errors read
// "[image] <path>: ...".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "perceiver/core/tensor.h"
#include "perceiver/data/image_codec.h"

namespace perceiver::data {

// float32 (out_h, out_w) in [0, 1]; images over max_pixels are refused before decoding.
Tensor load_image_grey(const std::string& path, int out_h, int out_w, int64_t max_pixels = kDefaultMaxImagePixels);

// Resizes a float32 (H, W) plane of any values to (out_h, out_w): area average per output pixel
// along an axis that shrinks, bilinear (pixel centres aligned, edges clamped) along one that grows.
Tensor resize_plane(const Tensor& plane, int out_h, int out_w);

// resize_plane for a grey image: the result clamped to [0, 1].
Tensor resize_grey(const Tensor& image, int out_h, int out_w);

// Writes a float32 (H, W) image (values clamped to [0, 1]) as an 8-bit grey PNG, atomically.
void write_png_grey(const std::string& path, const Tensor& image);

}  // namespace perceiver::data
