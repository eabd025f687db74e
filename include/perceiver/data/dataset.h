// Labelled example sets, the classifier trainer's input: examples of one fixed shape (images
// (H, W), waveform frames (T, F), ...) as float32, labels int32 in [0, class_names.size()).
// A Dataset holds them all in memory; an ExampleSource hands out the rows a batch asks for, from
// a Dataset or decoded from their files on demand (data.streaming: for sets larger than memory).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "perceiver/core/tensor.h"

namespace perceiver::data {

struct Dataset {
  Tensor inputs;  // (n, ...)
  Tensor labels;  // (n)
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

class ExampleSource {
 public:
  // Writes example `row`'s values (prod(example_shape) floats) to `out`; throws, naming the file,
  // when it cannot.
  using Reader = std::function<void(int64_t row, float* out)>;

  ExampleSource() = default;
  ExampleSource(Shape example_shape, std::vector<int32_t> labels, std::vector<std::string> class_names,
                Reader read, bool streamed);
  // The rows of an in-memory set, copied out.
  static ExampleSource from_memory(Dataset d);

  int64_t size() const { return static_cast<int64_t>(labels_.size()); }
  const Shape& example_shape() const { return example_shape_; }
  const std::vector<std::string>& class_names() const { return class_names_; }
  bool streamed() const { return streamed_; }
  // Bytes held for the examples (0 when streamed: only the file index is kept).
  int64_t resident_bytes() const;

  // inputs (n, example_shape...) and labels (n) of rows[0..n), in that order.
  void read(const int64_t* rows, int64_t n, Tensor& inputs, Tensor& labels) const;
  // Every example in memory (in order): what a non-streamed source is built from.
  Dataset load_all() const;
  // The first n examples (n <= 0 or >= size: all of them).
  ExampleSource take_first(int64_t n) const;

 private:
  Shape example_shape_;
  std::vector<int32_t> labels_;
  std::vector<std::string> class_names_;
  Reader read_;
  bool streamed_ = false;
  std::shared_ptr<const Dataset> memory_;  // from_memory: the rows the reader copies
};

}  // namespace perceiver::data
