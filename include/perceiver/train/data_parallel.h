// Data parallelism over the threads of one process (issue 18): a training batch is split along
// dim 0 into slices; each slice's forward, loss and backward run on its own thread with ops
// single-threaded inside (no barrier until the slice is done), its parameter gradients kept
// apart (autograd::GradientSink), then added into the parameters' grad in slice order. The
// result equals the whole-batch step within float rounding and is identical from run to run
// for a given slice count. Models with batch statistics (batch norm in training) are not split.
#pragma once

#include <functional>
#include <string>

#include "perceiver/core/random.h"
#include "perceiver/models/model.h"
#include "perceiver/train/task.h"

namespace perceiver::train {

// The loss of one batch (or slice): forward, then the mean loss over its predictions; stats
// (optional) receive its predictions; rng drives dropout.
using SliceLoss = std::function<Tensor(const models::TensorMap& batch, Rng* rng, EvalResult* stats)>;

struct StepLoss {
  float loss = 0;     // the whole batch's mean loss
  EvalResult stats;   // its predictions
};

// How many slices a training step of `batch` examples runs as: 1 (threads parallelise inside
// each op) or the thread count. parallelism: "intra_op", "batch", or "auto" (batch slices when
// there are several threads, at least two examples per slice, no batch statistics, and at most
// 64 MiB of extra gradient copies, i.e. small models; see data_parallel.cpp for the measurements).
int batch_slices(const std::string& parallelism, int threads, int64_t batch, models::Model& model);

// True when the model normalises with batch statistics in training (batch norm's running
// buffers): its result would change if the batch were cut into slices or processes.
bool has_batch_statistics(models::Model& model);

// Forward, loss and backward of `batch` in `slices` slices; gradients are ADDED into the
// parameters' grad (as autograd::backward). slices == 1 (and ranks == 1) is the plain step on
// rng; otherwise the batch is cut into P = ranks x slices parts, part p covering examples
// [b*p/P, b*(p+1)/P) with dropout from its own stream seeded from rng and its loss weighted by
// its share of the whole batch's predictions (labels >= 0); this process runs the parts
// rank x slices .. (rank + 1) x slices - 1 (train/distributed.h sums the ranks' gradients).
// The returned loss and stats cover this process's parts.
StepLoss forward_backward(const models::TensorMap& batch, int slices, Rng& rng, const SliceLoss& loss, int rank = 0,
                          int ranks = 1);

}  // namespace perceiver::train
