// Audio classification sets from folders of WAV files, classified from the raw waveform.
//
// Labels come from subfolders (root/<class>/*.wav) or from a file-name pattern such as FSDD's
// "{label}_{group}_{index}.wav" ({label}: class, {group}: e.g. the speaker, {index}: an integer,
// e.g. the take). The test set is one group (leave-one-speaker-out), an index range (FSDD's
// official split: takes 0-4), or a seeded fraction of the files. Every file must have the
// configured sample rate (a different rate is an error: resample the data first). Each waveform
// is peak-normalised (optional), cropped (centre) or zero-padded (end) to `length` samples and cut
// into frames of `frame` samples every `hop` samples: inputs (n, (length - frame) / hop + 1, frame)
// (hop = frame: the patches of the Perceiver IO audio preprocessor; hop < frame: overlapping). Errors read "[wav_folder] <path>: ...".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "perceiver/data/dataset.h"

namespace perceiver::data {

struct WavFolderOptions {
  std::string dir;
  std::string pattern;           // "" = labels from subfolders
  int64_t sample_rate = 8000;
  int64_t length = 6144;         // samples per example
  int64_t frame = 16;            // samples per input element
  int64_t hop = 0;               // samples between frame starts (0: = frame)
  bool peak_normalize = true;
  std::string test_group;        // the group held out for testing ("" = none)
  std::vector<int64_t> test_index_range;  // {lo, hi}: indices in [lo, hi] are the test set
  double test_fraction = 0.1;    // otherwise: this share of the files, chosen by a seeded hash
  uint64_t seed = 0;
  // Training set only: each file is also added resampled by these factors (speed perturbation,
  // e.g. {0.9, 1.1}: a 10% slower and a 10% faster copy, linear interpolation).
  std::vector<double> speed_factors;
};

// The training or the test part, every file read into memory.
Dataset load_wav_folder(const WavFolderOptions& options, bool train);
// The same examples (order, labels, values) listed now and read when a batch asks for them: a file
// that is missing, corrupt or at another rate by then is an error naming it at that batch.
ExampleSource wav_folder_source(const WavFolderOptions& options, bool train);

}  // namespace perceiver::data
