// The data sources of a run config's "data" object, by data.format: "idx" (Fashion-MNIST-style IDX
// files) and "wav" (a folder of WAV files, data/wav_folder.h); data.train_limit / test_limit
// applied.
#pragma once

#include "perceiver/data/dataset.h"
#include "perceiver/train/train_config.h"

namespace perceiver::train {

data::Dataset load_dataset(const DataConfig& config, bool train);

}  // namespace perceiver::train
