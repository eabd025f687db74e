// WAV files (RIFF/WAVE): PCM 8/16/24/32-bit integer and 32/64-bit float, WAVE_FORMAT_EXTENSIBLE
// included, any number of channels (averaged to mono). Every chunk size and the sample layout is
// validated against the file; errors read "[wav] <file>: ...".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace perceiver::data {

struct Wav {
  int64_t sample_rate = 0;
  int channels = 0;              // in the file (the samples below are mono)
  std::vector<float> samples;    // mono, in [-1, 1] for integer PCM (float files as stored)
};

// At most max_samples samples (per channel) are accepted (a limit against huge files).
Wav decode_wav(std::string_view bytes, const std::string& what, int64_t max_samples = int64_t(1) << 28);
Wav read_wav(const std::string& path, int64_t max_samples = int64_t(1) << 28);

// 16-bit PCM mono WAV bytes (for tests and fixtures).
std::string encode_wav_pcm16(const std::vector<float>& samples, int64_t sample_rate);

}  // namespace perceiver::data
