// PNG (libpng), JPEG (libjpeg-turbo) and binary PGM/PPM decoding with header-first size limits,
// to grey/RGB or RGBA through one path per format; PNG encoding.
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
#include <cmath>
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
  bool rgba = false;  // asked for: R, G, B, A output instead of grey or RGB
  png_uint_32 width = 0, height = 0;
  int channels = 0;  // after the transformations: 1 or 3, or 4 with rgba
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

// RGBA output: transparency becomes alpha (tRNS: each palette entry's alpha, or A = 0 on a grey/RGB
// colour key, compared before 16-bit samples lose their low byte), grey becomes RGB, and images
// without transparency get A = 255.
void png_set_rgba_output(png_structp png, int color_type, bool transparent) {
  if (transparent && !(color_type & PNG_COLOR_MASK_ALPHA)) png_set_tRNS_to_alpha(png);
  if (!(color_type & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
  if (!transparent) png_set_add_alpha(png, 0xFF, PNG_FILLER_AFTER);
}

// Reads the header and sets the transformations to 8-bit grey or RGB, or to RGBA when st->rgba
// asks for it. Returns false on error.
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
  const bool transparent =
      (color_type & PNG_COLOR_MASK_ALPHA) || png_get_valid(st->png, st->info, PNG_INFO_tRNS);
  if (st->rgba) {
    png_set_rgba_output(st->png, color_type, transparent);
    st->channels = 4;
    return true;
  }
  // Transparency (an alpha channel, or tRNS, which the palette expansion turns into alpha) is
  // dropped after the expansions.
  if (transparent) png_set_strip_alpha(st->png);
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

DecodedImage decode_png(std::string_view bytes, const std::string& what, int64_t max_pixels, bool rgba) {
  PngState st;
  PngReadGuard guard{&st};
  st.rgba = rgba;
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

// ---------------------------------------------------------------- PGM / PPM (binary Netpbm)

constexpr size_t kMaxPnmDigits = 10;  // Pillow's longest header token

struct PnmHeader {
  int64_t width = 0, height = 0, maxval = 0;
  int channels = 0;  // 1 (P5, PGM) or 3 (P6, PPM)
  size_t offset = 0;  // where the samples start
};

bool pnm_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

// Moves past whitespace and comments ('#' to the end of the line).
void pnm_skip_space(std::string_view bytes, size_t& pos) {
  while (pos < bytes.size()) {
    if (bytes[pos] == '#') {
      while (pos < bytes.size() && bytes[pos] != '\n' && bytes[pos] != '\r') ++pos;
    } else if (pnm_space(bytes[pos])) {
      ++pos;
    } else {
      return;
    }
  }
}

// Up to 12 header bytes from pos for an error message, unprintable ones as '?'.
std::string pnm_shown(std::string_view bytes, size_t pos) {
  std::string out;
  for (size_t i = pos; i < bytes.size() && i < pos + 12 && !pnm_space(bytes[i]); ++i)
    out += (bytes[i] >= 0x20 && bytes[i] < 0x7f) ? bytes[i] : '?';
  return out;
}

// The header number `field` at pos: decimal digits ended by one whitespace byte, which is consumed
// (after the maxval that byte is the last one before the samples).
int64_t pnm_number(std::string_view bytes, size_t& pos, const char* field, const std::string& what) {
  pnm_skip_space(bytes, pos);
  if (pos == bytes.size())
    throw_error("[image] ", what, ": invalid PGM/PPM header: the file ends before the ", field);
  const size_t start = pos;
  int64_t value = 0;
  while (pos < bytes.size() && bytes[pos] >= '0' && bytes[pos] <= '9' && pos - start < kMaxPnmDigits)
    value = value * 10 + (bytes[pos++] - '0');
  if (pos - start == kMaxPnmDigits && pos < bytes.size() && bytes[pos] >= '0' && bytes[pos] <= '9')
    throw_error("[image] ", what, ": invalid PGM/PPM header: the ", field, " has more than ", kMaxPnmDigits,
                " digits");
  if (pos == start || pos == bytes.size() || !pnm_space(bytes[pos]))
    throw_error("[image] ", what, ": invalid PGM/PPM header: the ", field, " is not a decimal number followed by ",
                "whitespace (got \"", pnm_shown(bytes, start), "\"", pos == bytes.size() ? ", then the end of the file" : "",
                ")");
  ++pos;
  return value;
}

// Magic number, width, height and maxval; sizes outside [1, kMaxImageSide] are refused here.
PnmHeader pnm_header(std::string_view bytes, const std::string& what) {
  PnmHeader h;
  h.channels = bytes[1] == '5' ? 1 : 3;
  if (bytes.size() < 3 || !pnm_space(bytes[2]))
    throw_error("[image] ", what, ": invalid PGM/PPM header: expected whitespace after the magic number ",
                bytes.substr(0, 2));
  size_t pos = 2;
  h.width = pnm_number(bytes, pos, "width", what);
  h.height = pnm_number(bytes, pos, "height", what);
  h.maxval = pnm_number(bytes, pos, "maxval", what);
  if (h.maxval < 1 || h.maxval > 65535)
    throw_error("[image] ", what, ": invalid PGM/PPM header: maxval ", h.maxval, " is outside [1, 65535]");
  check_size(what, h.height, h.width, kMaxImageSide * kMaxImageSide);
  h.offset = pos;
  return h;
}

// Sample value -> 8 bits, as Pillow's PpmDecoder: min(255, round(value / maxval * 255)) in double,
// rounding half to even like Python's round (nearbyint in the default rounding mode).
std::vector<uint8_t> pnm_scale_table(int64_t maxval, int sample_bytes) {
  std::vector<uint8_t> table(size_t(1) << (8 * sample_bytes));
  for (size_t v = 0; v < table.size(); ++v)
    table[v] = static_cast<uint8_t>(std::min(255.0, std::nearbyint(double(v) / double(maxval) * 255.0)));
  return table;
}

DecodedImage decode_pnm(std::string_view bytes, const std::string& what, int64_t max_pixels) {
  const PnmHeader h = pnm_header(bytes, what);
  check_size(what, h.height, h.width, max_pixels);  // before any pixel buffer exists
  const int sample_bytes = h.maxval > 255 ? 2 : 1;
  const size_t samples = static_cast<size_t>(h.height * h.width * h.channels);
  const size_t need = samples * static_cast<size_t>(sample_bytes);
  if (bytes.size() - h.offset < need)
    throw_error("[image] ", what, ": invalid PGM/PPM: the pixel data is truncated: ", h.width, " x ", h.height, " x ",
                h.channels, " samples of ", sample_bytes, " byte(s) need ", need, " bytes, the file has ",
                bytes.size() - h.offset, " after the header");
  const std::vector<uint8_t> to8 = pnm_scale_table(h.maxval, sample_bytes);
  const auto* in = reinterpret_cast<const uint8_t*>(bytes.data() + h.offset);
  DecodedImage img{h.height, h.width, h.channels, std::vector<uint8_t>(samples)};
  for (size_t i = 0; i < samples; ++i)
    img.pixels[i] = to8[sample_bytes == 1 ? in[i] : (size_t(in[2 * i]) << 8) | in[2 * i + 1]];
  return img;
}

// ---------------------------------------------------------------- shared

// Grey or RGB pixels -> R, G, B, A with A = 255 (grey gives R = G = B).
DecodedImage opaque_rgba(const DecodedImage& img) {
  DecodedImage out{img.height, img.width, 4, {}};
  const size_t n = static_cast<size_t>(img.height * img.width);
  out.pixels.resize(4 * n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = img.pixels.data() + i * static_cast<size_t>(img.channels);
    for (int c = 0; c < 3; ++c) out.pixels[4 * i + c] = p[img.channels == 1 ? 0 : c];
    out.pixels[4 * i + 3] = 255;
  }
  return out;
}

// Formats without transparency: their grey or RGB pixels, or those with A = 255 when rgba.
DecodedImage with_alpha_if(DecodedImage img, bool rgba) {
  if (rgba) return opaque_rgba(img);
  return img;
}

[[noreturn]] void unsupported(std::string_view bytes, const std::string& what) {
  static const char* kHex = "0123456789abcdef";
  std::string head;
  for (size_t i = 0; i < bytes.size() && i < 8; ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    head += std::string(i ? " " : "") + kHex[b >> 4] + kHex[b & 15];
  }
  throw_error("[image] ", what, ": not a PNG, JPEG, PGM or PPM file (first bytes: ", head.empty() ? "none" : head,
              "); only PNG, JPEG and binary PGM/PPM (P5/P6) are read: convert other formats first ",
              "(e.g. `convert in.bmp out.png`)");
}

// The one decoding path of decode_image (rgba false) and decode_image_rgba (rgba true).
DecodedImage decode(std::string_view bytes, const std::string& what, int64_t max_pixels, bool rgba) {
  if (bytes.empty()) throw_error("[image] ", what, ": file is empty");
  if (max_pixels < 1) throw_error("[image] ", what, ": the pixel limit must be positive, got ", max_pixels);
  switch (sniff_image_format(bytes)) {
    case ImageFormat::kPng:
      return decode_png(bytes, what, max_pixels, rgba);
    case ImageFormat::kJpeg:
      return with_alpha_if(decode_jpeg(bytes, what, max_pixels), rgba);
    case ImageFormat::kPnm:
      return with_alpha_if(decode_pnm(bytes, what, max_pixels), rgba);
    default:
      unsupported(bytes, what);
  }
}

}  // namespace

ImageFormat sniff_image_format(std::string_view bytes) {
  static const unsigned char kPngSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPngSig, 8) == 0) return ImageFormat::kPng;
  if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
      static_cast<unsigned char>(bytes[1]) == 0xD8 && static_cast<unsigned char>(bytes[2]) == 0xFF)
    return ImageFormat::kJpeg;
  if (bytes.size() >= 2 && bytes[0] == 'P' && (bytes[1] == '5' || bytes[1] == '6')) return ImageFormat::kPnm;
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
    case ImageFormat::kPnm: {
      const PnmHeader h = pnm_header(bytes, what);
      return ImageHeader{ImageFormat::kPnm, h.height, h.width, h.channels};
    }
    default:
      unsupported(bytes, what);
  }
}

DecodedImage decode_image(std::string_view bytes, const std::string& what, int64_t max_pixels) {
  return decode(bytes, what, max_pixels, false);
}

DecodedImage decode_image_rgba(std::string_view bytes, const std::string& what, int64_t max_pixels) {
  return decode(bytes, what, max_pixels, true);
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
