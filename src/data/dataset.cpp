// Labelled example sets in memory and example sources (see dataset.h).
#include "perceiver/data/dataset.h"

#include <algorithm>

#include "perceiver/core/error.h"

namespace perceiver::data {

Dataset take_first(const Dataset& d, int64_t n) {
  if (n <= 0 || n >= d.size()) return d;
  return Dataset{d.inputs.slice0(0, n), d.labels.slice0(0, n), d.class_names};
}

ExampleSource::ExampleSource(Shape example_shape, std::vector<int32_t> labels, std::vector<std::string> class_names,
                             Reader read, bool streamed)
    : example_shape_(std::move(example_shape)),
      labels_(std::move(labels)),
      class_names_(std::move(class_names)),
      read_(std::move(read)),
      streamed_(streamed) {}

ExampleSource ExampleSource::from_memory(Dataset d) {
  check(d.inputs.defined() && d.inputs.dtype() == DType::kF32 && d.labels.defined() &&
            d.labels.dtype() == DType::kI32 && d.labels.numel() == d.size(),
        "[data] an in-memory set needs float32 inputs (n, ...) and int32 labels (n)");
  auto memory = std::make_shared<const Dataset>(std::move(d));
  const int64_t per = memory->size() > 0 ? memory->inputs.numel() / memory->size() : 0;
  std::vector<int32_t> labels(memory->labels.data<int32_t>(), memory->labels.data<int32_t>() + memory->size());
  ExampleSource s(memory->example_shape(), std::move(labels), memory->class_names,
                  [memory, per](int64_t row, float* out) {
                    const float* src = memory->inputs.f32() + row * per;
                    std::copy(src, src + per, out);
                  },
                  false);
  s.memory_ = memory;
  return s;
}

int64_t ExampleSource::resident_bytes() const { return memory_ ? memory_->inputs.nbytes() : 0; }

void ExampleSource::read(const int64_t* rows, int64_t n, Tensor& inputs, Tensor& labels) const {
  Shape s = example_shape_;
  s.insert(s.begin(), n);
  inputs = Tensor::empty(s);
  labels = Tensor::empty({n}, DType::kI32);
  const int64_t per = shape_numel(example_shape_);
  for (int64_t i = 0; i < n; ++i) {
    check(rows[i] >= 0 && rows[i] < size(), "[data] example ", rows[i], " is out of range [0, ", size(), ")");
    read_(rows[i], inputs.f32() + i * per);
    labels.data<int32_t>()[i] = labels_[static_cast<size_t>(rows[i])];
  }
}

Dataset ExampleSource::load_all() const {
  if (memory_) return data::take_first(*memory_, size());
  std::vector<int64_t> rows(static_cast<size_t>(size()));
  for (int64_t i = 0; i < size(); ++i) rows[static_cast<size_t>(i)] = i;
  Dataset d;
  d.class_names = class_names_;
  read(rows.data(), size(), d.inputs, d.labels);
  return d;
}

ExampleSource ExampleSource::take_first(int64_t n) const {
  if (n <= 0 || n >= size()) return *this;
  ExampleSource s = *this;
  s.labels_.resize(static_cast<size_t>(n));
  return s;
}

}  // namespace perceiver::data
