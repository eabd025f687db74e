// Reverse-mode differentiation over the recorded graph (see src/autograd/tape.cpp).
#pragma once

#include <memory>
#include <vector>

#include "perceiver/autograd/meta.h"

namespace perceiver::autograd {

// Computes d(root)/d(leaf) for every leaf that requires grad and ADDS it into leaf.grad()
// (so gradients accumulate across calls until zero_grad). root must have one element unless
// grad_root (same shape as root) is given. The graph is released afterwards.
void backward(const Tensor& root, const Tensor& grad_root = Tensor());

// True when an op with these inputs must record a node.
bool should_record(std::initializer_list<const Tensor*> inputs);

// Attaches a node producing `outputs` (sets their grad_fn and requires_grad).
void record(const std::string& name, std::vector<Tensor> inputs, std::vector<Tensor*> outputs,
            BackwardFn backward);

}  // namespace perceiver::autograd
