// Image files <-> 8-bit pixels, through decoders made for untrusted input: PNG with libpng,
// JPEG with libjpeg-turbo (both fuzzed continuously upstream). Every other format is refused
// with an error that says so. The header is read first, and an image over the pixel limit is
// refused before any pixel buffer is allocated.
//
// Decoded pixels follow Pillow's Image.open(...).convert("RGB") (and "L" for grey files):
//   PNG: palette -> its RGB colours; 1/2/4-bit grey scaled to 0..255; 16-bit samples keep the
//        high byte (Pillow's ";16B" raw modes; for 16-bit *grey* Pillow clips to 255 instead);
//        alpha and tRNS transparency are dropped without compositing; gamma and colour profiles
//        are ignored, as Pillow does.
//   JPEG: libjpeg-turbo defaults as Pillow uses them (accurate integer IDCT, fancy upsampling);
//        CMYK/YCCK files convert to RGB with Pillow's cmyk2rgb (Adobe files are inverted);
//        a truncated file is an error (Pillow: "image file is truncated"); progressive files
//        with more than 500 scans are refused (a known CPU-exhaustion pattern).
// Errors read "[image] <what>: ...".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace perceiver::data {

constexpr int64_t kDefaultMaxImagePixels = 100'000'000;  // 100 megapixels (~300 MB as RGB)
constexpr int64_t kMaxImageSide = 1 << 16;

enum class ImageFormat { kUnknown, kPng, kJpeg };

// From the first bytes of a file.
ImageFormat sniff_image_format(std::string_view bytes);

// What the header says: the size and the channels decoding gives (1: grey, 3: colour).
struct ImageHeader {
  ImageFormat format = ImageFormat::kUnknown;
  int64_t height = 0, width = 0;
  int channels = 0;
};
ImageHeader read_image_header(std::string_view bytes, const std::string& what);

// 8-bit pixels, row-major (H, W, C), C = 1 (grey files) or 3 (everything else, R, G, B).
struct DecodedImage {
  int64_t height = 0, width = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;
};

// Decodes a PNG or JPEG; refuses width * height > max_pixels (from the header, before decoding).
DecodedImage decode_image(std::string_view bytes, const std::string& what,
                          int64_t max_pixels = kDefaultMaxImagePixels);

// An 8-bit PNG of (H, W, C) pixels, C = 1 (grey) or 3 (RGB).
std::string encode_png(const uint8_t* pixels, int64_t height, int64_t width, int channels, const std::string& what);

}  // namespace perceiver::data
