// WAV folders -> labelled waveform frames (see wav_folder.h).
#include "perceiver/data/wav_folder.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <regex>

#include "perceiver/core/error.h"
#include "perceiver/data/class_folders.h"
#include "perceiver/data/wav.h"

namespace perceiver::data {
namespace {

namespace fs = std::filesystem;

struct File {
  std::string path, label, group;
  int64_t index = -1;
};

// "{label}_{group}_{index}.wav" -> a regex with one capture per placeholder (in order).
std::regex pattern_regex(const std::string& pattern, std::vector<std::string>& fields) {
  std::string re;
  for (size_t i = 0; i < pattern.size();) {
    if (pattern[i] == '{') {
      const size_t close = pattern.find('}', i);
      if (close == std::string::npos) throw_error("[wav_folder] pattern \"", pattern, "\": unclosed '{'");
      const std::string name = pattern.substr(i + 1, close - i - 1);
      if (name != "label" && name != "group" && name != "index")
        throw_error("[wav_folder] pattern \"", pattern, "\": unknown field {", name, "} (expected {label}, {group}, {index})");
      fields.push_back(name);
      re += name == "index" ? "([0-9]+)" : "([^/]+?)";
      i = close + 1;
    } else {
      if (std::string("\\^$.|?*+()[]{}").find(pattern[i]) != std::string::npos) re += '\\';
      re += pattern[i++];
    }
  }
  if (std::find(fields.begin(), fields.end(), "label") == fields.end())
    throw_error("[wav_folder] pattern \"", pattern, "\": needs a {label} field");
  return std::regex(re);
}

std::vector<File> list_files(const WavFolderOptions& o) {
  if (!fs::is_directory(o.dir)) throw_error("[wav_folder] ", o.dir, ": not a directory");
  std::vector<File> files;
  if (o.pattern.empty()) {  // root/<class>/*.wav
    for (const auto& cls : fs::directory_iterator(o.dir)) {
      if (!cls.is_directory()) continue;
      for (const auto& e : fs::directory_iterator(cls.path()))
        if (e.is_regular_file() && e.path().extension() == ".wav")
          files.push_back({e.path().string(), cls.path().filename().string(), "", -1});
    }
  } else {
    std::vector<std::string> fields;
    const std::regex re = pattern_regex(o.pattern, fields);
    std::vector<std::string> unmatched;
    for (const auto& e : fs::recursive_directory_iterator(o.dir)) {
      if (!e.is_regular_file() || e.path().extension() != ".wav") continue;
      const std::string name = e.path().filename().string();
      std::smatch m;
      if (!std::regex_match(name, m, re)) {
        unmatched.push_back(name);
        continue;
      }
      File f{e.path().string(), "", "", -1};
      for (size_t k = 0; k < fields.size(); ++k) {
        const std::string v = m[k + 1].str();
        if (fields[k] == "label") f.label = v;
        if (fields[k] == "group") f.group = v;
        if (fields[k] == "index") f.index = v.size() <= 9 ? std::stoll(v) : -1;
      }
      files.push_back(f);
    }
    if (!unmatched.empty())
      throw_error("[wav_folder] ", o.dir, ": ", unmatched.size(), " .wav file(s) do not match the pattern \"", o.pattern,
                  "\", e.g. ", unmatched.front());
  }
  if (files.empty()) throw_error("[wav_folder] ", o.dir, ": no .wav files found");
  std::sort(files.begin(), files.end(), [](const File& a, const File& b) { return a.path < b.path; });
  return files;
}

bool in_test_set(const File& f, const WavFolderOptions& o) {
  if (!o.test_group.empty()) return f.group == o.test_group;
  if (o.test_index_range.size() == 2) return f.index >= o.test_index_range[0] && f.index <= o.test_index_range[1];
  return held_out_file(f.path, o.test_fraction, o.seed);  // by the file name: independent of the file order
}

// Peak-normalised, centre-cropped or end-padded to `length` samples.
void fit(std::vector<float>& s, const WavFolderOptions& o, float* out) {
  if (o.peak_normalize) {
    float peak = 0;
    for (float v : s) peak = std::max(peak, std::fabs(v));
    if (peak > 0)
      for (float& v : s) v /= peak;
  }
  const int64_t n = static_cast<int64_t>(s.size());
  const int64_t start = n > o.length ? (n - o.length) / 2 : 0;
  const int64_t take = std::min(n, o.length);
  std::fill(out, out + o.length, 0.0f);
  std::copy(s.begin() + start, s.begin() + start + take, out);
}

// The waveform played `speed` times faster: out[k] = in(k * speed), linear interpolation.
std::vector<float> resample(const std::vector<float>& in, double speed) {
  const size_t n = static_cast<size_t>(std::floor(static_cast<double>(in.size() - 1) / speed)) + 1;
  std::vector<float> out(n);
  for (size_t k = 0; k < n; ++k) {
    const double pos = static_cast<double>(k) * speed;
    const size_t i = std::min(static_cast<size_t>(pos), in.size() - 1);
    const double frac = pos - static_cast<double>(i);
    out[k] = i + 1 < in.size() ? static_cast<float>((1 - frac) * in[i] + frac * in[i + 1]) : in[i];
  }
  return out;
}

// One example: the file at `speed`, fitted to `length` and cut into `frames` frames (frames, frame).
void read_example(const std::string& path, double speed, const WavFolderOptions& o, int64_t frames, int64_t hop,
                  float* out) {
  Wav w = read_wav(path);
  if (w.sample_rate != o.sample_rate)
    throw_error("[wav_folder] ", path, ": sample rate ", w.sample_rate, " Hz, expected ", o.sample_rate,
                " Hz (data.sample_rate); resample the files first");
  if (w.samples.empty()) throw_error("[wav_folder] ", path, ": no samples");
  for (float v : w.samples)
    if (!std::isfinite(v)) throw_error("[wav_folder] ", path, ": holds NaN or Inf samples");
  if (speed != 1.0) w.samples = resample(w.samples, speed);
  std::vector<float> wave(static_cast<size_t>(o.length));
  fit(w.samples, o, wave.data());
  for (int64_t t = 0; t < frames; ++t)
    std::copy(wave.begin() + t * hop, wave.begin() + t * hop + o.frame, out + t * o.frame);
}

}  // namespace

ExampleSource wav_folder_source(const WavFolderOptions& o, bool train) {
  const int64_t hop = o.hop > 0 ? o.hop : o.frame;
  if (o.length < 1 || o.frame < 1 || o.frame > o.length || (o.length - o.frame) % hop != 0)
    throw_error("[wav_folder] length ", o.length, " must be frame (", o.frame, ") plus a multiple of hop (", hop,
                ")");
  const int64_t frames = (o.length - o.frame) / hop + 1;
  const std::vector<File> all = list_files(o);
  std::vector<std::string> classes;
  for (const File& f : all) classes.push_back(f.label);
  std::sort(classes.begin(), classes.end());
  classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
  if (!o.test_group.empty() &&
      std::none_of(all.begin(), all.end(), [&](const File& f) { return f.group == o.test_group; }))
    throw_error("[wav_folder] ", o.dir, ": no file has the test group \"", o.test_group, "\"");
  std::vector<const File*> part;
  for (const File& f : all)
    if (in_test_set(f, o) != train) part.push_back(&f);
  if (part.empty()) throw_error("[wav_folder] ", o.dir, ": the ", train ? "training" : "test", " set is empty");
  for (double s : o.speed_factors)
    if (!(s >= 0.5 && s <= 2.0)) throw_error("[wav_folder] speed factor ", s, " is outside [0.5, 2]");
  // (file, speed) pairs: every file at speed 1, and on the training side at each extra factor
  std::vector<std::pair<const File*, double>> items;
  for (const File* f : part) items.emplace_back(f, 1.0);
  if (train)
    for (double s : o.speed_factors)
      for (const File* f : part) items.emplace_back(f, s);

  std::vector<int32_t> labels;
  for (const auto& [f, speed] : items)
    labels.push_back(static_cast<int32_t>(std::lower_bound(classes.begin(), classes.end(), f->label) - classes.begin()));
  // what a read needs of each example: its file and speed
  auto files = std::make_shared<std::vector<std::pair<std::string, double>>>();
  for (const auto& [f, speed] : items) files->emplace_back(f->path, speed);
  return ExampleSource({frames, o.frame}, std::move(labels), classes,
                       [files, o, frames, hop](int64_t row, float* out) {
                         const auto& [path, speed] = (*files)[static_cast<size_t>(row)];
                         read_example(path, speed, o, frames, hop, out);
                       },
                       /*streamed=*/true);
}

Dataset load_wav_folder(const WavFolderOptions& o, bool train) { return wav_folder_source(o, train).load_all(); }

}  // namespace perceiver::data
