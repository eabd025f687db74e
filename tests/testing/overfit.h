// Fitting a small batch of random images to 100% training accuracy (the "can it learn at all"
// check of a classifier): AdamW without weight decay, at most `max_steps` full-batch steps.
#pragma once

#include <algorithm>
#include <vector>

#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/models/image_classifier.h"
#include "perceiver/optim/optimizer.h"

namespace perceiver::testing {

// Returns how many of the batch the last step's logits classified correctly.
inline int64_t fit_batch(models::ImageClassifier& model, const Tensor& x, const std::vector<int32_t>& labels,
                         int max_steps = 300, float lr = 3e-3f) {
  const int64_t b = static_cast<int64_t>(labels.size()), k = model.num_classes();
  const Tensor y = Tensor::from_vector_i32({b}, labels);
  auto params = model.named_parameters();
  optim::OptimizerOptions oo;
  oo.weight_decay = 0.0f;
  auto opt = optim::make_optimizer("adamw", params, oo);
  int64_t correct = 0;
  for (int step = 0; step < max_steps && correct < b; ++step) {
    Tensor logits = model.forward(x);
    Tensor loss = ag::cross_entropy(logits, y, 0.0f);
    opt->zero_grad();
    autograd::backward(loss);
    opt->step(lr);
    correct = 0;
    for (int64_t i = 0; i < b; ++i) {
      const float* row = logits.f32() + i * k;
      correct += std::max_element(row, row + k) - row == labels[static_cast<size_t>(i)];
    }
  }
  return correct;
}

}  // namespace perceiver::testing
