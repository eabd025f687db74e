// Image files <-> 8-bit pixels, through decoders made for untrusted input: PNG with libpng,
// JPEG with libjpeg-turbo (both fuzzed continuously upstream), and binary Netpbm greymaps and
// pixmaps (PGM "P5", PPM "P6"; a small parser of our own, fuzzed with the others). Every other
// format (ASCII Netpbm P1-P3 and bitmaps P4 included) is refused with an error that says so. The
// header is read first, and an image over the pixel limit is refused before any pixel buffer is
// allocated.
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
//   PGM/PPM: header "P5"/"P6", width, height, maxval (1..65535) as decimal numbers separated by
//        whitespace, '#' comments to the end of a line between them, then one whitespace byte and
//        the samples (1 byte each, or 2 big-endian bytes when maxval > 255). maxval 255 keeps the
//        samples; any other maxval scales them as Pillow's PpmDecoder does for 8-bit output:
//        min(255, round(value / maxval * 255)), rounding half to even (samples over maxval clip
//        to 255). Pillow gives 16-bit PGMs the 32-bit mode "I" and its convert("L") clips them to
//        255; we scale them to 0..255 like its PPMs instead. Missing samples are an error; bytes
//        after the last sample are ignored.
// decode_image_rgba follows Pillow's convert("RGBA"): PNG alpha channels are kept, grey + alpha
// becomes R = G = B = grey, palette tRNS gives each entry its alpha, a grey/RGB tRNS colour key
// gives A = 0 on exactly that colour (16-bit keys are compared before the high byte is taken),
// and everything without transparency (JPEG and PGM/PPM always) gets A = 255.
// Errors read "[image] <what>: ...".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace perceiver::data {

constexpr int64_t kDefaultMaxImagePixels = 100'000'000;  // 100 megapixels (~300 MB as RGB)
constexpr int64_t kMaxImageSide = 1 << 16;

enum class ImageFormat { kUnknown, kPng, kJpeg, kPnm };  // kPnm: binary PGM (P5) or PPM (P6)

// From the first bytes of a file.
ImageFormat sniff_image_format(std::string_view bytes);

// What the header says: the size and the channels decoding gives (1: grey, 3: colour).
struct ImageHeader {
  ImageFormat format = ImageFormat::kUnknown;
  int64_t height = 0, width = 0;
  int channels = 0;
};
ImageHeader read_image_header(std::string_view bytes, const std::string& what);

// 8-bit pixels, row-major (H, W, C), C = 1 (grey files) or 3 (everything else, R, G, B); from
// decode_image_rgba always C = 4 (R, G, B, A).
struct DecodedImage {
  int64_t height = 0, width = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;
};

// Decodes a PNG, JPEG, PGM or PPM; refuses width * height > max_pixels (from the header, before
// decoding).
DecodedImage decode_image(std::string_view bytes, const std::string& what,
                          int64_t max_pixels = kDefaultMaxImagePixels);

// The same files as R, G, B, A (channels == 4), like Pillow's convert("RGBA"); same limits.
DecodedImage decode_image_rgba(std::string_view bytes, const std::string& what,
                               int64_t max_pixels = kDefaultMaxImagePixels);

// An 8-bit PNG of (H, W, C) pixels, C = 1 (grey) or 3 (RGB).
std::string encode_png(const uint8_t* pixels, int64_t height, int64_t width, int channels, const std::string& what);

}  // namespace perceiver::data
