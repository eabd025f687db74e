// Run-config data sources (see datasets.h).
#include "perceiver/train/datasets.h"

#include "perceiver/core/error.h"
#include "perceiver/data/fashion_mnist.h"
#include "perceiver/data/wav_folder.h"

namespace perceiver::train {

data::Dataset load_dataset(const DataConfig& c, bool train) {
  data::Dataset d;
  if (c.format == "idx") {
    d = data::load_fashion_mnist(c.dir, train);
  } else if (c.format == "wav") {
    data::WavFolderOptions o;
    o.dir = c.dir;
    o.pattern = c.pattern;
    o.sample_rate = c.sample_rate;
    o.length = c.length;
    o.frame = c.frame;
    o.hop = c.hop;
    o.peak_normalize = c.peak_normalize;
    o.test_group = c.test_group;
    o.test_index_range = c.test_index_range;
    o.test_fraction = c.test_fraction;
    o.seed = c.split_seed;
    d = data::load_wav_folder(o, train);
  } else {
    throw_error("[config] data.format: expected \"idx\" or \"wav\", got \"", c.format, "\"");
  }
  return data::take_first(d, train ? c.train_limit : c.test_limit);
}

}  // namespace perceiver::train
