// RIFF/WAVE decoding with every size checked against the file (see wav.h).
#include "perceiver/data/wav.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "perceiver/core/error.h"
#include "perceiver/io/atomic_file.h"

namespace perceiver::data {
namespace {

constexpr uint16_t kPcm = 1, kFloat = 3, kExtensible = 0xFFFE;

uint32_t u32(const unsigned char* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t(p[3]) << 24); }
uint16_t u16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

float sample_at(const unsigned char* p, uint16_t format, int bits) {
  if (format == kFloat) {
    if (bits == 32) {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    double d;
    std::memcpy(&d, p, 8);
    return static_cast<float>(d);
  }
  switch (bits) {
    case 8: return (static_cast<int>(p[0]) - 128) / 128.0f;  // 8-bit PCM is unsigned
    case 16: return static_cast<int16_t>(u16(p)) / 32768.0f;
    case 24: {
      int32_t v = p[0] | (p[1] << 8) | (p[2] << 16);
      if (v & 0x800000) v -= 0x1000000;
      return static_cast<float>(v) / 8388608.0f;
    }
    default: return static_cast<float>(static_cast<int32_t>(u32(p))) / 2147483648.0f;
  }
}

}  // namespace

Wav decode_wav(std::string_view bytes, const std::string& what, int64_t max_samples) {
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  if (n < 12 || std::memcmp(b, "RIFF", 4) != 0 || std::memcmp(b + 8, "WAVE", 4) != 0)
    throw_error("[wav] ", what, ": not a RIFF/WAVE file (", n, " bytes)");
  bool have_fmt = false;
  uint16_t format = 0, channels = 0, block_align = 0, bits = 0;
  uint32_t rate = 0;
  const unsigned char* data = nullptr;
  size_t data_size = 0;
  for (size_t pos = 12; pos + 8 <= n;) {
    const uint32_t size = u32(b + pos + 4);
    const unsigned char* body = b + pos + 8;
    const size_t avail = n - pos - 8;
    if (std::memcmp(b + pos, "fmt ", 4) == 0) {
      if (size < 16 || size > avail) throw_error("[wav] ", what, ": fmt chunk of ", size, " bytes does not fit the file");
      format = u16(body);
      channels = u16(body + 2);
      rate = u32(body + 4);
      block_align = u16(body + 12);
      bits = u16(body + 14);
      if (format == kExtensible) {
        if (size < 40) throw_error("[wav] ", what, ": WAVE_FORMAT_EXTENSIBLE fmt chunk too short (", size, " bytes)");
        format = u16(body + 24);  // the sub-format GUID starts with the format code
      }
      have_fmt = true;
    } else if (std::memcmp(b + pos, "data", 4) == 0) {
      data = body;
      data_size = std::min<size_t>(size, avail);  // a truncated data chunk (a streaming writer) is read as far as it goes
      break;
    }
    if (size > avail) throw_error("[wav] ", what, ": chunk '", std::string(reinterpret_cast<const char*>(b + pos), 4),
                                  "' of ", size, " bytes does not fit the file");
    pos += 8 + size + (size & 1);  // chunks are padded to even sizes
  }
  if (!have_fmt) throw_error("[wav] ", what, ": no fmt chunk before the data");
  if (!data) throw_error("[wav] ", what, ": no data chunk");
  const bool ok_format = (format == kPcm && (bits == 8 || bits == 16 || bits == 24 || bits == 32)) ||
                         (format == kFloat && (bits == 32 || bits == 64));
  if (!ok_format)
    throw_error("[wav] ", what, ": unsupported sample format ", format, " with ", bits,
                " bits (expected PCM 8/16/24/32-bit or float 32/64-bit)");
  if (channels < 1 || channels > 64) throw_error("[wav] ", what, ": expected 1 to 64 channels, got ", channels);
  if (rate < 1 || rate > 768000) throw_error("[wav] ", what, ": sample rate ", rate, " Hz is outside [1, 768000]");
  const int bytes_per_sample = bits / 8;
  if (block_align != channels * bytes_per_sample)
    throw_error("[wav] ", what, ": block align ", block_align, " does not match ", channels, " channels of ", bits,
                " bits");
  const int64_t frames = static_cast<int64_t>(data_size / block_align);
  if (frames > max_samples) throw_error("[wav] ", what, ": ", frames, " samples exceed the limit of ", max_samples);
  Wav w;
  w.sample_rate = rate;
  w.channels = channels;
  w.samples.resize(static_cast<size_t>(frames));
  for (int64_t i = 0; i < frames; ++i) {
    float s = 0;
    for (int c = 0; c < channels; ++c) s += sample_at(data + i * block_align + c * bytes_per_sample, format, bits);
    w.samples[static_cast<size_t>(i)] = s / channels;
  }
  return w;
}

Wav read_wav(const std::string& path, int64_t max_samples) { return decode_wav(io::read_file(path), path, max_samples); }

std::string encode_wav_pcm16(const std::vector<float>& samples, int64_t sample_rate) {
  std::string out;
  auto put32 = [&](uint32_t v) { for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF)); };
  auto put16 = [&](uint16_t v) { out.push_back(static_cast<char>(v & 0xFF)); out.push_back(static_cast<char>(v >> 8)); };
  const uint32_t data_bytes = static_cast<uint32_t>(samples.size() * 2);
  out += "RIFF";
  put32(36 + data_bytes);
  out += "WAVEfmt ";
  put32(16);
  put16(kPcm);
  put16(1);
  put32(static_cast<uint32_t>(sample_rate));
  put32(static_cast<uint32_t>(sample_rate * 2));
  put16(2);
  put16(16);
  out += "data";
  put32(data_bytes);
  for (float s : samples) {
    const float c = std::isfinite(s) ? std::clamp(s, -1.0f, 1.0f) : 0.0f;
    put16(static_cast<uint16_t>(static_cast<int16_t>(std::lround(c * 32767.0f))));
  }
  return out;
}

}  // namespace perceiver::data
