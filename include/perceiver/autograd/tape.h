// Reverse-mode differentiation over the recorded graph (see src/autograd/tape.cpp).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "perceiver/autograd/meta.h"

namespace perceiver::autograd {

// Computes d(root)/d(leaf) for every leaf that requires grad and ADDS it into leaf.grad()
// (so gradients accumulate across calls until zero_grad). root must have one element unless
// grad_root (same shape as root) is given. The graph is released afterwards.
void backward(const Tensor& root, const Tensor& grad_root = Tensor());

// The leaves' gradients of one walk, in the order the walk reached them, not yet added in.
using LeafGradients = std::vector<std::pair<AutogradMeta*, Tensor>>;

// As backward, but hands the leaves' gradients back instead of adding them in (root must not be
// a leaf). ag::checkpoint reads its recomputed inputs' gradients from here.
LeafGradients backward_collect(const Tensor& root, const Tensor& grad_root = Tensor());

// Adds each gradient into its leaf.grad() (a leaf without one takes the tensor itself when
// nothing else shares its storage, else a private copy), or into this thread's GradientSink
// while one is open. The entries are released as they go.
void commit_gradients(LeafGradients& grads);

// While alive, gradients committed on this thread (backward, commit_gradients) are summed here
// instead of into the leaves: batch slices differentiated on several threads at once keep
// their gradients apart and commit them afterwards in a fixed order (train/data_parallel.h).
class GradientSink {
 public:
  GradientSink();
  ~GradientSink();
  GradientSink(const GradientSink&) = delete;
  GradientSink& operator=(const GradientSink&) = delete;
  void add(AutogradMeta* leaf, const Tensor& grad);  // sums per leaf, in arrival order
  LeafGradients take();                              // the sums, in first-arrival order

 private:
  LeafGradients grads_;
  std::vector<std::pair<AutogradMeta*, size_t>> index_;  // leaf -> slot (few hundred leaves)
  GradientSink* outer_;
};

// While alive, a backward() walk on this thread tells `ready` each leaf whose gradient of that
// walk is final (every edge into the leaf has been walked), with that gradient, before the walk
// goes on: data-parallel training starts sending a bucket of gradients while backward still
// runs. The gradient is the walk's own contribution (committed only when the walk ends) and must
// not be kept. Nested walks (backward_collect, e.g. ag::checkpoint's) are not observed.
class LeafGradientObserver {
 public:
  using Ready = std::function<void(AutogradMeta* leaf, const Tensor& grad)>;
  explicit LeafGradientObserver(Ready ready);
  ~LeafGradientObserver();
  LeafGradientObserver(const LeafGradientObserver&) = delete;
  LeafGradientObserver& operator=(const LeafGradientObserver&) = delete;
  const Ready& ready() const { return ready_; }

 private:
  Ready ready_;
  LeafGradientObserver* outer_;
};

// True when an op with these inputs must record a node.
bool should_record(std::initializer_list<const Tensor*> inputs);

// Attaches a node producing `outputs` (sets their grad_fn and requires_grad).
void record(const std::string& name, std::vector<Tensor> inputs, std::vector<Tensor*> outputs,
            BackwardFn backward);

}  // namespace perceiver::autograd
