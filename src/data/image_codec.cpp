// PNG (libpng) and JPEG (libjpeg-turbo) decoding with header-first size limits, PNG encoding.
//
// Both libraries report errors by longjmp. Each decoder runs in a function that holds no C++
// object with a destructor: all state it changes lives in a struct owned by the caller (the
// values a longjmp makes indeterminate are only the setjmp caller's own locals), and the error
// text is copied into a fixed buffer. The caller throws once the library is cleaned up.
#include "perceiver/data/image_codec.h"

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <memory>

#include "perceiver/core/error.h"

namespace perceiver::data {
namespace {

constexpr int kMaxJpegScans = 500;

struct ErrorText {
  char text[JMSG_LENGTH_MAX + 64] = {0};
  void set(const char* msg) { std::snprintf(text, sizeof(text), "%s", msg ? msg : "unknown error"); }
};

void check_size(const std::string& what, int64_t height, int64_t width, int64_t max_pixels) {
  if (height < 1 || width < 1 || height > kMaxImageSide || width > kMaxImageSide)
    throw_error("[image] ", what, ": image size ", width, " x ", height, " is outside [1, ", kMaxImageSide,
                "] pixels a side");
  if (height * width > max_pixels)
    throw_error("[image] ", what, ": image of ", width, " x ", height, " = ", height * width,
                " pixels exceeds the limit of ", max_pixels, " pixels (raise it with --max-image-pixels)");
}

// ---------------------------------------------------------------- PNG

struct PngState {
  const unsigned char* data = nullptr;
  size_t size = 0, pos = 0;
  png_structp png = nullptr;
  png_infop info = nullptr;
  ErrorText error;
  // Header.
  png_uint_32 width = 0, height = 0;
  int channels = 0;  // after the transformations: 1 or 3
  // Decoding.
  int64_t max_pixels = 0;
  bool size_ok = false;
  std::vector<uint8_t>* pixels = nullptr;
  std::vector<png_bytep>* rows = nullptr;
  // Encoding.
  std::string* out = nullptr;
};

void png_error_fn(png_structp png, png_const_charp msg) {
  auto* st = static_cast<PngState*>(png_get_error_ptr(png));
  st->error.set(msg);
  png_longjmp(png, 1);
}

void png_warning_fn(png_structp, png_const_charp) {}  // benign problems (e.g. odd sRGB profiles)

void png_read_fn(png_structp png, png_bytep out, png_size_t n) {
  auto* st = static_cast<PngState*>(png_get_io_ptr(png));
  if (n > st->size - st->pos) png_error(png, "file is truncated");
  std::memcpy(out, st->data + st->pos, n);
  st->pos += n;
}

// Reads the header and sets the transformations to 8-bit grey or RGB. Returns false on error.
bool png_read_header(PngState* st) {
  if (setjmp(png_jmpbuf(st->png))) return false;
  png_set_user_limits(st->png, kMaxImageSide, kMaxImageSide);
  png_set_benign_errors(st->png, 1);
  png_set_read_fn(st->png, st, png_read_fn);
  png_read_info(st->png, st->info);
  int bit_depth = 0, color_type = 0;
  png_get_IHDR(st->png, st->info, &st->width, &st->height, &bit_depth, &color_type, nullptr, nullptr, nullptr);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(st->png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(st->png);
  if (bit_depth == 16) png_set_strip_16(st->png);
  // Transparency (an alpha channel, or tRNS, which the palette expansion turns into alpha) is
  // dropped after the expansions.
  if ((color_type & PNG_COLOR_MASK_ALPHA) || png_get_valid(st->png, st->info, PNG_INFO_tRNS)) png_set_strip_alpha(st->png);
  st->channels = (color_type & PNG_COLOR_MASK_COLOR) ? 3 : 1;
  return true;
}

bool png_decode_rows(PngState* st) {
  if (setjmp(png_jmpbuf(st->png))) return false;
  png_set_interlace_handling(st->png);
  png_read_update_info(st->png, st->info);
  if (png_get_rowbytes(st->png, st->info) != static_cast<size_t>(st->width) * static_cast<size_t>(st->channels))
    png_error(st->png, "unexpected row size after conversion");
  png_read_image(st->png, st->rows->data());
  png_read_end(st->png, nullptr);
  return true;
}

struct PngReadGuard {
  PngState* st;
  ~PngReadGuard() { png_destroy_read_struct(&st->png, st->info ? &st->info : nullptr, nullptr); }
};

ImageHeader png_header(std::string_view bytes, const std::string& what, PngState& st) {
  st.data = reinterpret_cast<const unsigned char*>(bytes.data());
  st.size = bytes.size();
  st.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, png_error_fn, png_warning_fn);
  if (!st.png) throw_error("[image] ", what, ": cannot initialise libpng");
  st.info = png_create_info_struct(st.png);
  if (!st.info) throw_error("[image] ", what, ": cannot initialise libpng");
  if (!png_read_header(&st)) throw_error("[image] ", what, ": invalid PNG: ", st.error.text);
  return ImageHeader{ImageFormat::kPng, static_cast<int64_t>(st.height), static_cast<int64_t>(st.width), st.channels};
}

DecodedImage decode_png(std::string_view bytes, const std::string& what, int64_t max_pixels) {
  PngState st;
  PngReadGuard guard{&st};
  const ImageHeader h = png_header(bytes, what, st);
  check_size(what, h.height, h.width, max_pixels);  // before any pixel buffer exists
  DecodedImage img{h.height, h.width, h.channels, {}};
  img.pixels.resize(static_cast<size_t>(h.height * h.width * h.channels));
  std::vector<png_bytep> rows(static_cast<size_t>(h.height));
  for (int64_t y = 0; y < h.height; ++y) rows[static_cast<size_t>(y)] = img.pixels.data() + y * h.width * h.channels;
  st.pixels = &img.pixels;
  st.rows = &rows;
  if (!png_decode_rows(&st)) throw_error("[image] ", what, ": invalid PNG: ", st.error.text);
  return img;
}

void png_write_fn(png_structp png, png_bytep data, png_size_t n) {
  static_cast<PngState*>(png_get_io_ptr(png))->out->append(reinterpret_cast<const char*>(data), n);
}
void png_flush_fn(png_structp) {}

bool png_encode(PngState* st, const uint8_t* pixels, int64_t height, int64_t width, int channels) {
  if (setjmp(png_jmpbuf(st->png))) return false;
  png_set_write_fn(st->png, st, png_write_fn, png_flush_fn);
  png_set_IHDR(st->png, st->info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8,
               channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(st->png, st->info);
  for (int64_t y = 0; y < height; ++y) png_write_row(st->png, pixels + y * width * channels);
  png_write_end(st->png, nullptr);
  return true;
}

// ---------------------------------------------------------------- JPEG

struct JpegState {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr err;
  jpeg_progress_mgr progress;
  std::jmp_buf jump;
  ErrorText error;
  bool created = false;
  int channels = 0;  // 1 or 3 after conversion
  bool cmyk = false, inverted = false;
  uint8_t* out = nullptr;  // H x W x (cmyk ? 4 : channels)
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* st = static_cast<JpegState*>(cinfo->client_data);
  char msg[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, msg);
  st->error.set(msg);
  std::longjmp(st->jump, 1);
}

// Warnings (level -1) come from corrupt data; a premature end of file is an error, as in Pillow.
void jpeg_emit_message(j_common_ptr cinfo, int level) {
  if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_error_exit(cinfo);
  if (level == -1) cinfo->err->num_warnings++;
}

void jpeg_progress(j_common_ptr cinfo) {
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->is_decompressor && d->input_scan_number > kMaxJpegScans) {
    auto* st = static_cast<JpegState*>(cinfo->client_data);
    std::snprintf(st->error.text, sizeof(st->error.text), "progressive JPEG with more than %d scans", kMaxJpegScans);
    std::longjmp(st->jump, 1);
  }
}

bool jpeg_read_header_impl(JpegState* st, const unsigned char* data, size_t size) {
  if (setjmp(st->jump)) return false;
  jpeg_create_decompress(&st->cinfo);
  st->created = true;
  jpeg_mem_src(&st->cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&st->cinfo, TRUE);
  switch (st->cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
      st->cinfo.out_color_space = JCS_GRAYSCALE;
      st->channels = 1;
      break;
    case JCS_YCbCr:
    case JCS_RGB:
      st->cinfo.out_color_space = JCS_RGB;
      st->channels = 3;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      st->cinfo.out_color_space = JCS_CMYK;
      st->channels = 3;
      st->cmyk = true;
      st->inverted = st->cinfo.saw_Adobe_marker;
      break;
    default:
      std::snprintf(st->error.text, sizeof(st->error.text), "unsupported JPEG colour space with %d components",
                    st->cinfo.num_components);
      return false;
  }
  return true;
}

bool jpeg_decode_impl(JpegState* st, int64_t max_memory) {
  if (setjmp(st->jump)) return false;
  st->cinfo.mem->max_memory_to_use = static_cast<long>(max_memory);
  st->cinfo.progress = &st->progress;
  jpeg_start_decompress(&st->cinfo);
  const size_t stride = static_cast<size_t>(st->cinfo.output_width) * static_cast<size_t>(st->cinfo.output_components);
  while (st->cinfo.output_scanline < st->cinfo.output_height) {
    JSAMPROW row = st->out + static_cast<size_t>(st->cinfo.output_scanline) * stride;
    jpeg_read_scanlines(&st->cinfo, &row, 1);
  }
  jpeg_finish_decompress(&st->cinfo);
  return true;
}

struct JpegGuard {
  JpegState* st;
  ~JpegGuard() {
    if (st->created) jpeg_destroy_decompress(&st->cinfo);
  }
};

void jpeg_init(JpegState& st) {
  st.cinfo.err = jpeg_std_error(&st.err);
  st.err.error_exit = jpeg_error_exit;
  st.err.emit_message = jpeg_emit_message;
  st.cinfo.client_data = &st;
  st.progress.progress_monitor = jpeg_progress;
}

ImageHeader jpeg_header(std::string_view bytes, const std::string& what, JpegState& st) {
  jpeg_init(st);
  if (!jpeg_read_header_impl(&st, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()))
    throw_error("[image] ", what, ": invalid JPEG: ", st.error.text);
  return ImageHeader{ImageFormat::kJpeg, static_cast<int64_t>(st.cinfo.image_height),
                     static_cast<int64_t>(st.cinfo.image_width), st.channels};
}

// Pillow's CMYK -> RGB (Convert.c cmyk2rgb): nk = 255 - k; v = nk - c * nk / 255 (rounded).
uint8_t cmyk_channel(int c, int k) {
  const int nk = 255 - k;
  const int t = c * nk + 128;
  const int v = nk - (((t >> 8) + t) >> 8);
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

DecodedImage decode_jpeg(std::string_view bytes, const std::string& what, int64_t max_pixels) {
  JpegState st;
  JpegGuard guard{&st};
  const ImageHeader h = jpeg_header(bytes, what, st);
  check_size(what, h.height, h.width, max_pixels);  // before any pixel buffer exists
  const int decoded_channels = st.cmyk ? 4 : h.channels;
  std::vector<uint8_t> buffer(static_cast<size_t>(h.height * h.width * decoded_channels));
  st.out = buffer.data();
  // Progressive files keep whole-image coefficient buffers (2 bytes per coefficient).
  const int64_t max_memory = (int64_t(256) << 20) + std::min(max_pixels, kMaxImageSide * kMaxImageSide) * 16;
  if (!jpeg_decode_impl(&st, max_memory)) throw_error("[image] ", what, ": invalid JPEG: ", st.error.text);
  if (static_cast<int64_t>(st.cinfo.output_width) != h.width || static_cast<int64_t>(st.cinfo.output_height) != h.height)
    throw_error("[image] ", what, ": invalid JPEG: decoded size differs from the header");
  DecodedImage img{h.height, h.width, h.channels, {}};
  if (!st.cmyk) {
    img.pixels = std::move(buffer);
    return img;
  }
  img.pixels.resize(static_cast<size_t>(h.height * h.width * 3));
  for (size_t i = 0, n = static_cast<size_t>(h.height * h.width); i < n; ++i) {
    const uint8_t* p = buffer.data() + 4 * i;
    auto in = [&](int c) { return st.inverted ? 255 - p[c] : p[c]; };
    for (int c = 0; c < 3; ++c) img.pixels[3 * i + c] = cmyk_channel(in(c), in(3));
  }
  return img;
}

[[noreturn]] void unsupported(std::string_view bytes, const std::string& what) {
  static const char* kHex = "0123456789abcdef";
  std::string head;
  for (size_t i = 0; i < bytes.size() && i < 8; ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    head += std::string(i ? " " : "") + kHex[b >> 4] + kHex[b & 15];
  }
  throw_error("[image] ", what, ": not a PNG or JPEG file (first bytes: ", head.empty() ? "none" : head,
              "); only PNG and JPEG are read: convert other formats first (e.g. `convert in.bmp out.png`)");
}

}  // namespace

ImageFormat sniff_image_format(std::string_view bytes) {
  static const unsigned char kPngSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPngSig, 8) == 0) return ImageFormat::kPng;
  if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
      static_cast<unsigned char>(bytes[1]) == 0xD8 && static_cast<unsigned char>(bytes[2]) == 0xFF)
    return ImageFormat::kJpeg;
  return ImageFormat::kUnknown;
}

ImageHeader read_image_header(std::string_view bytes, const std::string& what) {
  switch (sniff_image_format(bytes)) {
    case ImageFormat::kPng: {
      PngState st;
      PngReadGuard guard{&st};
      return png_header(bytes, what, st);
    }
    case ImageFormat::kJpeg: {
      JpegState st;
      JpegGuard guard{&st};
      return jpeg_header(bytes, what, st);
    }
    default:
      unsupported(bytes, what);
  }
}

DecodedImage decode_image(std::string_view bytes, const std::string& what, int64_t max_pixels) {
  if (bytes.empty()) throw_error("[image] ", what, ": file is empty");
  if (max_pixels < 1) throw_error("[image] ", what, ": the pixel limit must be positive, got ", max_pixels);
  switch (sniff_image_format(bytes)) {
    case ImageFormat::kPng:
      return decode_png(bytes, what, max_pixels);
    case ImageFormat::kJpeg:
      return decode_jpeg(bytes, what, max_pixels);
    default:
      unsupported(bytes, what);
  }
}

std::string encode_png(const uint8_t* pixels, int64_t height, int64_t width, int channels, const std::string& what) {
  if (channels != 1 && channels != 3) throw_error("[image] ", what, ": PNG encoding takes 1 or 3 channels, got ", channels);
  check_size(what, height, width, kMaxImageSide * kMaxImageSide);
  std::string out;
  PngState st;
  st.out = &out;
  st.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &st, png_error_fn, png_warning_fn);
  if (!st.png) throw_error("[image] ", what, ": cannot initialise libpng");
  st.info = png_create_info_struct(st.png);
  const bool ok = st.info && png_encode(&st, pixels, height, width, channels);
  png_destroy_write_struct(&st.png, st.info ? &st.info : nullptr);
  if (!ok) throw_error("[image] ", what, ": PNG encoding failed: ", st.error.text);
  return out;
}

}  // namespace perceiver::data
