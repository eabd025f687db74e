// WAV decoding (every PCM width, float, extensible, multi-channel) against hand-written files;
// malformed files are errors naming the file; WAV folders give labelled waveform frames with the
// FSDD-style file-name pattern, subfolders, and the three test splits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "io_test_util.h"
#include "perceiver/data/wav.h"
#include "perceiver/data/wav_folder.h"

namespace perceiver {
namespace {

using testing::TempDir;
using testing::throws_error;
using testing::write_bytes;

// A WAV with the given fmt fields and raw sample bytes.
std::string wav_bytes(uint16_t format, uint16_t channels, uint32_t rate, uint16_t bits, const std::string& data,
                      bool extensible = false) {
  std::string out;
  auto put32 = [&](uint32_t v) { for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF)); };
  auto put16 = [&](uint16_t v) { out.push_back(static_cast<char>(v & 0xFF)); out.push_back(static_cast<char>(v >> 8)); };
  const uint32_t fmt_size = extensible ? 40 : 16;
  out += "RIFF";
  put32(4 + 8 + fmt_size + 8 + static_cast<uint32_t>(data.size()));
  out += "WAVEfmt ";
  put32(fmt_size);
  put16(extensible ? 0xFFFE : format);
  put16(channels);
  put32(rate);
  put32(rate * channels * bits / 8);
  put16(static_cast<uint16_t>(channels * bits / 8));
  put16(bits);
  if (extensible) {
    put16(22);
    put16(bits);
    put32(0);
    put16(format);  // sub-format GUID: format code + the fixed tail
    out += std::string("\x00\x00\x00\x00\x10\x00\x80\x00\x00\xAA\x00\x38\x9B\x71", 14);
  }
  out += "data";
  put32(static_cast<uint32_t>(data.size()));
  return out + data;
}

TEST(Wav, DecodesEveryWidthAndFormat) {
  // 16-bit: -32768, 0, 16384
  data::Wav w = data::decode_wav(wav_bytes(1, 1, 8000, 16, std::string("\x00\x80\x00\x00\x00\x40", 6)), "a");
  EXPECT_EQ(w.sample_rate, 8000);
  EXPECT_EQ(w.samples, (std::vector<float>{-1.0f, 0.0f, 0.5f}));
  // 8-bit unsigned: 0, 128, 192
  w = data::decode_wav(wav_bytes(1, 1, 16000, 8, std::string("\x00\x80\xC0", 3)), "b");
  EXPECT_EQ(w.samples, (std::vector<float>{-1.0f, 0.0f, 0.5f}));
  // 24-bit: 0x400000 = 0.5, 0xC00000 = -0.5
  w = data::decode_wav(wav_bytes(1, 1, 8000, 24, std::string("\x00\x00\x40\x00\x00\xC0", 6)), "c");
  EXPECT_EQ(w.samples, (std::vector<float>{0.5f, -0.5f}));
  // 32-bit PCM and float; stereo is averaged to mono
  const float f[4] = {0.25f, 0.75f, -1.0f, 0.0f};
  w = data::decode_wav(wav_bytes(3, 2, 8000, 32, std::string(reinterpret_cast<const char*>(f), 16)), "d");
  EXPECT_EQ(w.channels, 2);
  EXPECT_EQ(w.samples, (std::vector<float>{0.5f, -0.5f}));
  const double g[2] = {0.125, -0.25};
  w = data::decode_wav(wav_bytes(3, 1, 8000, 64, std::string(reinterpret_cast<const char*>(g), 16), true), "e");
  EXPECT_EQ(w.samples, (std::vector<float>{0.125f, -0.25f}));
  const int32_t i32[1] = {int32_t(1) << 30};
  w = data::decode_wav(wav_bytes(1, 1, 8000, 32, std::string(reinterpret_cast<const char*>(i32), 4)), "f");
  EXPECT_EQ(w.samples, (std::vector<float>{0.5f}));
  // round trip of our own writer
  const std::vector<float> s = {0.0f, 0.5f, -0.5f, 1.0f};
  w = data::decode_wav(data::encode_wav_pcm16(s, 8000), "g");
  for (size_t i = 0; i < s.size(); ++i) EXPECT_NEAR(w.samples[i], s[i], 1.0 / 32767);
}

TEST(Wav, MalformedFilesAreErrors) {
  const std::string good = wav_bytes(1, 1, 8000, 16, std::string(8, '\0'));
  EXPECT_TRUE(throws_error([] { data::decode_wav("RIFX....WAVE", "x"); }, {"[wav] x: not a RIFF/WAVE file"}));
  EXPECT_TRUE(throws_error([&] { data::decode_wav(good.substr(0, 30), "t"); }, {"[wav] t: "}));
  EXPECT_TRUE(throws_error([] { data::decode_wav(wav_bytes(2, 1, 8000, 4, "ab"), "adpcm"); },
                           {"unsupported sample format 2 with 4 bits"}));
  EXPECT_TRUE(throws_error([] { data::decode_wav(wav_bytes(1, 0, 8000, 16, "ab"), "c0"); }, {"expected 1 to 64 channels"}));
  EXPECT_TRUE(throws_error([] { data::decode_wav(wav_bytes(1, 1, 0, 16, "ab"), "r0"); }, {"sample rate 0 Hz"}));
  std::string bad_align = good;
  bad_align[32] = 3;  // block align
  EXPECT_TRUE(throws_error([&] { data::decode_wav(bad_align, "ba"); }, {"block align 3 does not match"}));
  std::string huge_fmt = good;
  huge_fmt[16] = '\xff';
  huge_fmt[17] = '\xff';
  EXPECT_TRUE(throws_error([&] { data::decode_wav(huge_fmt, "hf"); }, {"fmt chunk of", "does not fit the file"}));
  std::string no_data = good.substr(0, 36);
  EXPECT_TRUE(throws_error([&] { data::decode_wav(no_data, "nd"); }, {"no data chunk"}));
  EXPECT_TRUE(throws_error([&] { data::decode_wav(good, "lim", 2); }, {"4 samples exceed the limit of 2"}));
}

// FSDD-like folder: {digit}_{speaker}_{take}.wav, a sine per digit.
void make_folder(const std::string& dir, int digits, const std::vector<std::string>& speakers, int takes,
                 int64_t rate = 8000, int64_t len = 100) {
  std::filesystem::create_directories(dir);
  for (int d = 0; d < digits; ++d)
    for (const auto& s : speakers)
      for (int t = 0; t < takes; ++t) {
        std::vector<float> x(static_cast<size_t>(len + 10 * t));
        for (size_t i = 0; i < x.size(); ++i) x[i] = 0.25f * std::sin(0.1f * (d + 1) * static_cast<float>(i));
        write_bytes(dir + "/" + std::to_string(d) + "_" + s + "_" + std::to_string(t) + ".wav",
                    data::encode_wav_pcm16(x, rate));
      }
}

TEST(WavFolder, FsddPatternAndTheThreeSplits) {
  TempDir tmp;
  make_folder(tmp.dir(), 3, {"ann", "bob"}, 6);
  data::WavFolderOptions o;
  o.dir = tmp.dir();
  o.pattern = "{label}_{group}_{index}.wav";
  o.length = 96;
  o.frame = 8;
  o.test_index_range = {0, 1};  // takes 0-1 test (FSDD: 0-4)
  const data::Dataset train = data::load_wav_folder(o, true), test = data::load_wav_folder(o, false);
  EXPECT_EQ(train.size(), 3 * 2 * 4);
  EXPECT_EQ(test.size(), 3 * 2 * 2);
  EXPECT_EQ(train.example_shape(), (Shape{12, 8}));
  EXPECT_EQ(train.class_names, (std::vector<std::string>{"0", "1", "2"}));
  // peak-normalised: the largest |sample| of each example is 1 (the sine is cropped, not padded)
  for (int64_t i = 0; i < train.size(); ++i) {
    float peak = 0;
    for (int64_t k = 0; k < 96; ++k) peak = std::max(peak, std::fabs(train.inputs.f32()[i * 96 + k]));
    EXPECT_NEAR(peak, 1.0f, 1e-3) << i;
  }
  o.test_index_range.clear();
  o.test_group = "bob";  // leave one speaker out
  EXPECT_EQ(data::load_wav_folder(o, false).size(), 3 * 6);
  EXPECT_EQ(data::load_wav_folder(o, true).size(), 3 * 6);
  o.test_group = "carl";
  EXPECT_TRUE(throws_error([&] { data::load_wav_folder(o, true); }, {"no file has the test group \"carl\""}));
  o.test_group.clear();
  o.test_fraction = 0.5;  // seeded hash split: deterministic, both parts non-empty, disjoint
  const int64_t a = data::load_wav_folder(o, true).size(), b = data::load_wav_folder(o, false).size();
  EXPECT_EQ(a + b, 36);
  EXPECT_GT(a, 5);
  EXPECT_GT(b, 5);
  EXPECT_EQ(data::load_wav_folder(o, true).size(), a);
  // speed perturbation: the training side gains one resampled copy per factor, the test side none
  o.test_fraction = 0.5;
  o.speed_factors = {0.9, 1.1};
  EXPECT_EQ(data::load_wav_folder(o, true).size(), 3 * a);
  EXPECT_EQ(data::load_wav_folder(o, false).size(), b);
  o.speed_factors = {3.0};
  EXPECT_TRUE(throws_error([&] { data::load_wav_folder(o, true); }, {"speed factor 3 is outside [0.5, 2]"}));
  o.speed_factors.clear();
  // padding: a length longer than every file zero-pads the end
  o.length = 400;
  const data::Dataset padded = data::load_wav_folder(o, true);
  EXPECT_EQ(padded.inputs.f32()[399], 0.0f);
}

TEST(WavFolder, SubfoldersMismatchesAndBadFilesAreErrors) {
  TempDir tmp;
  make_folder(tmp.dir() + "/yes", 1, {"a"}, 3);
  make_folder(tmp.dir() + "/no", 1, {"a"}, 3);
  data::WavFolderOptions o;
  o.dir = tmp.dir();
  o.length = 64;
  o.frame = 16;
  o.test_fraction = 0.0;
  const data::Dataset d = data::load_wav_folder(o, true);
  EXPECT_EQ(d.size(), 6);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"no", "yes"}));
  EXPECT_TRUE(throws_error([&] { data::load_wav_folder(o, false); }, {"the test set is empty"}));
  // a file at another sample rate
  write_bytes(tmp.file("yes/odd.wav"), data::encode_wav_pcm16({0.1f, 0.2f}, 16000));
  EXPECT_TRUE(throws_error([&] { data::load_wav_folder(o, true); }, {"odd.wav", "sample rate 16000 Hz, expected 8000 Hz"}));
  // a corrupt file
  write_bytes(tmp.file("yes/odd.wav"), "RIFF");
  EXPECT_TRUE(throws_error([&] { data::load_wav_folder(o, true); }, {"[wav] ", "odd.wav"}));
  std::filesystem::remove(tmp.file("yes/odd.wav"));
  // pattern mismatches and bad options
  o.pattern = "{label}-{index}.wav";
  EXPECT_TRUE(throws_error([&] { data::load_wav_folder(o, true); }, {"do not match the pattern", "e.g. 0_a_"}));
  o.pattern = "{speaker}.wav";
  EXPECT_TRUE(throws_error([&] { data::load_wav_folder(o, true); }, {"unknown field {speaker}"}));
  o.pattern.clear();
  o.frame = 7;
  EXPECT_TRUE(throws_error([&] { data::load_wav_folder(o, true); }, {"length 64 must be frame (7) plus a multiple of hop (7)"}));
  o.frame = 32;
  o.hop = 16;  // overlapping frames: 3 of 32 samples, starting at 0, 16, 32
  const data::Dataset overlap = data::load_wav_folder(o, true);
  EXPECT_EQ(overlap.example_shape(), (Shape{3, 32}));
  EXPECT_EQ(overlap.inputs.f32()[16], overlap.inputs.f32()[32]);  // frame 1 starts where frame 0's second half does
  o.hop = 0;
  o.frame = 16;
  o.dir = tmp.file("missing");
  EXPECT_TRUE(throws_error([&] { data::load_wav_folder(o, true); }, {"not a directory"}));
  // float samples with NaN are refused
  TempDir nan_dir;
  std::filesystem::create_directories(nan_dir.file("c"));
  const float bad[2] = {0.1f, std::nanf("")};
  write_bytes(nan_dir.file("c/x.wav"), wav_bytes(3, 1, 8000, 32, std::string(reinterpret_cast<const char*>(bad), 8)));
  o.dir = nan_dir.dir();
  EXPECT_TRUE(throws_error([&] { data::load_wav_folder(o, true); }, {"x.wav: holds NaN or Inf samples"}));
}

}  // namespace
}  // namespace perceiver
