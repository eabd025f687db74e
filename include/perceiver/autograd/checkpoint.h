// Activation checkpointing (Chen et al. 2016, arXiv 1604.06174; torch.utils.checkpoint):
// trade compute for memory in training by keeping only a segment's inputs and recomputing the
// segment's forward during backward.
#pragma once

#include <functional>
#include <vector>

#include "perceiver/core/random.h"
#include "perceiver/core/tensor.h"

namespace perceiver::ag {

// A segment: output = fn(inputs, rng). It may use module parameters (closed over) and draw from
// rng (dropout); it must be deterministic given its inputs and rng state.
using Segment = std::function<Tensor(const std::vector<Tensor>& inputs, Rng* rng)>;

// Runs fn without recording its intermediates and records one node whose backward
//   1. re-runs fn with recording on, on detached copies of the inputs and a copy of rng's state
//      taken before the forward (so dropout draws the same masks),
//   2. back-propagates the output gradient through that fresh graph: the parameters fn uses get
//      their gradients added directly, the inputs' gradients are returned to the outer walk.
// Peak memory of a stack of checkpointed segments is their inputs plus one segment's graph.
// Unlike other nodes, the parameters' gradients are added while the outer walk runs (not at its
// end), so a rule that throws later in that walk leaves them partly accumulated.
// With recording off, or when neither an input nor a parameter of fn needs a gradient
// (params_need_grad false), this is just fn(inputs, rng).
Tensor checkpoint(const Segment& fn, const std::vector<Tensor>& inputs, Rng* rng,
                  bool params_need_grad);

// True on this thread while a checkpoint's backward re-runs its segment: state a forward
// updates once per step (BatchNorm's running statistics) must not be updated again then.
bool recomputing();

}  // namespace perceiver::ag
