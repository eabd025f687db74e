// Data-parallel training across processes (issue 14), on dist/world.h. Every rank builds the
// same global batch (same permutation, augmentation and masking: they are seeded by the step)
// and runs its share of the batch's slices (train/data_parallel.h: slice p of ranks x slices
// covers examples [b p / P, b (p + 1) / P) with its own dropout stream and loss weight), so
// N ranks x 1 thread compute what one process computes in N slices. The ranks' gradients are
// then summed in rank order (dist::OrderedSum), in buckets that start while backward still
// runs; every rank applies the same update to the same state and stays bit-identical.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "perceiver/autograd/tape.h"
#include "perceiver/dist/world.h"
#include "perceiver/nn/module.h"
#include "perceiver/optim/optimizer.h"
#include "perceiver/train/task.h"

namespace perceiver::train {

// Sums the ranks' parameter gradients. Parameters are packed, last first (the order backward
// produces them), into buckets of about bucket_bytes.
class GradientReducer {
 public:
  GradientReducer(std::vector<nn::NamedTensor> params, int64_t bucket_bytes);

  // Before backward. overlap: watch the walk (autograd::LeafGradientObserver) and start each
  // bucket as soon as its last gradient is final; valid when the step is one backward() whose
  // gradients land straight in the parameters (one slice per rank, no activation checkpointing,
  // whose recomputation commits gradients outside the observed walk).
  void begin_step(bool overlap);
  // After backward: starts the remaining buckets, waits for all, and writes the sums into the
  // parameters' grad (a parameter without a gradient on every rank keeps none).
  void finish_step();

  int num_buckets() const { return static_cast<int>(buckets_.size()); }
  // Of the last step: buckets started during backward, and seconds spent in finish_step.
  int buckets_overlapped() const { return overlapped_; }
  double exposed_seconds() const { return exposed_s_; }

 private:
  struct Bucket {
    std::vector<size_t> params;   // indices into params_
    std::vector<int64_t> offset;  // of each parameter in data
    std::vector<float> data;
    size_t ready = 0;
    std::unique_ptr<dist::OrderedSum> sum;
  };
  void on_ready(autograd::AutogradMeta* leaf, const Tensor& grad);
  void start(size_t b);

  std::vector<nn::NamedTensor> params_;
  std::vector<Bucket> buckets_;
  std::vector<std::pair<size_t, size_t>> where_;  // parameter -> (bucket, slot)
  std::vector<std::pair<autograd::AutogradMeta*, size_t>> leaf_index_;  // sorted by leaf
  std::unique_ptr<autograd::LeafGradientObserver> observer_;
  int overlapped_ = 0;
  double exposed_s_ = 0;
};

// Rank 0's parameters, buffers, optimizer state and step, copied to every rank (a fresh start,
// --init or --resume: only rank 0 reads files).
void broadcast_training_state(nn::Module& model, optim::Optimizer& optimizer, int64_t& step);

// Aborts the job, naming the first rank that differs, unless every rank holds the same bits in
// its parameters, buffers and optimizer state (a 64-bit hash of each, gathered).
void check_replicas_identical(nn::Module& model, const optim::Optimizer& optimizer, int64_t step);

// The evaluation of the test set split across ranks ([T r / N, T (r + 1) / N) each), merged in
// rank order: every rank returns the whole test set's result.
EvalResult evaluate_distributed(const Task& task, int64_t batch_size);

}  // namespace perceiver::train
