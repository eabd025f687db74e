// A labelled example set held in memory, the trainer's input: inputs (n, ...) float32 with one
// fixed example shape (images (n, H, W), waveform frames (n, T, F), ...), labels (n) int32 in
// [0, class_names.size()).
#pragma once

#include <string>
#include <vector>

#include "perceiver/core/tensor.h"

namespace perceiver::data {

struct Dataset {
  Tensor inputs;
  Tensor labels;
  std::vector<std::string> class_names;
  int64_t size() const { return inputs.defined() ? inputs.dim(0) : 0; }
  Shape example_shape() const {
    Shape s = inputs.shape();
    s.erase(s.begin());
    return s;
  }
};

// The first n examples (n <= 0 or >= size: all of them).
Dataset take_first(const Dataset& d, int64_t n);

}  // namespace perceiver::data
