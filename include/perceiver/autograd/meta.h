// Per-tensor autograd state and graph nodes. A node is created only when grad mode is on and
// some input requires grad, so inference allocates none of this.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "perceiver/core/tensor.h"

namespace perceiver::autograd {

struct Node;

struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;                    // accumulated gradient (leaves only)
  std::shared_ptr<Node> grad_fn;  // producer of this tensor (non-leaves)
  int output_index = 0;           // which output of grad_fn this tensor is
};

// Maps the gradients of a node's outputs to the gradients of its inputs. grad_outputs[i] is
// undefined when output i received no gradient; return one entry per input (undefined where
// the input needs none). Rules live in src/autograd/functions/*.cpp.
using BackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& grad_outputs)>;

// What the walk needs of a node's input: where its gradient goes (its autograd state, or null
// when it needs none) and its shape. Not the tensor: a node never keeps an input's data alive;
// rules capture exactly what their backward reads (a mixed-precision linear keeps only the bf16
// copy of its input, an add nothing).
struct Edge {
  std::shared_ptr<AutogradMeta> meta;
  Shape shape;
};

struct Node {
  std::string name;
  std::vector<Edge> inputs;  // in the order backward returns grads
  int num_outputs = 1;
  std::vector<Shape> output_shapes;
  BackwardFn backward;
  bool needs_input_grad(size_t i) const { return inputs[i].meta && inputs[i].meta->requires_grad; }
};

}  // namespace perceiver::autograd
