// In-memory labelled example sets (see dataset.h).
#include "perceiver/data/dataset.h"

namespace perceiver::data {

Dataset take_first(const Dataset& d, int64_t n) {
  if (n <= 0 || n >= d.size()) return d;
  return Dataset{d.inputs.slice0(0, n), d.labels.slice0(0, n), d.class_names};
}

}  // namespace perceiver::data
