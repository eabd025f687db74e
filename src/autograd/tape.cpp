// The tape walk (reverse-mode autodiff), after MLX transforms.cpp `vjp`:
//  1. collect the nodes reachable from the root and order them topologically (iterative DFS);
//  2. walk them in reverse, handing each node the gradients of its outputs;
//  3. sum gradients where a value feeds several ops (fan-out): into the running sum in place
//     when nothing else holds its tensor or storage, else out of place (a rule may return the
//     same tensor for two inputs, or pass its output's gradient through unchanged);
//  4. leaves (tensors that require grad and have no producer) ADD into leaf.grad(), so
//     gradients accumulate across backward calls until zero_grad (parameter convention);
//     a gradient some other tensor shares is never written in place. Leaf gradients are
//     collected first and committed only when the whole walk succeeded, so a rule that throws
//     leaves every leaf.grad() as it was.
// After the walk (or an error) every visited node drops its saved tensors (no retain_graph).
// A new leaf gradient takes over the walk's tensor when nothing else shares its storage (a
// private copy otherwise), so the gradients are never held twice. While a GradientSink is open
// on the thread, commits sum into it instead (a batch slice's gradients, kept apart). A
// LeafGradientObserver hears of each leaf as soon as its gradient is final (data parallelism).
#include "perceiver/autograd/tape.h"

#include <unordered_map>
#include <unordered_set>

#include "perceiver/autograd/grad_mode.h"
#include "perceiver/ops/elementwise.h"

namespace perceiver::autograd {

bool should_record(std::initializer_list<const Tensor*> inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t != nullptr && t->defined() && t->requires_grad()) return true;
  return false;
}

void record(const std::string& name, std::vector<Tensor> inputs, std::vector<Tensor*> outputs,
            BackwardFn backward) {
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs.reserve(inputs.size());
  for (const Tensor& t : inputs)
    node->inputs.push_back({t.defined() && t.requires_grad() ? t.autograd_meta() : nullptr,
                            t.defined() ? t.shape() : Shape{}});
  node->num_outputs = static_cast<int>(outputs.size());
  node->backward = std::move(backward);
  for (size_t i = 0; i < outputs.size(); ++i) {
    Tensor& out = *outputs[i];
    node->output_shapes.push_back(out.shape());
    out.set_requires_grad(true);
    out.autograd_meta()->grad_fn = node;
    out.autograd_meta()->output_index = static_cast<int>(i);
  }
}

namespace {

std::vector<Node*> topological_order(Node* root) {
  std::vector<Node*> order;
  std::unordered_set<Node*> visited;
  std::vector<std::pair<Node*, size_t>> stack{{root, 0}};
  visited.insert(root);
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      const Edge& in = node->inputs[next++];
      if (in.meta && in.meta->requires_grad && in.meta->grad_fn) {
        Node* child = in.meta->grad_fn.get();
        if (visited.insert(child).second) stack.emplace_back(child, 0);
      }
    } else {
      order.push_back(node);  // post-order: inputs before consumers
      stack.pop_back();
    }
  }
  return order;
}

// slot += g: in place when nothing else holds the slot's tensor or storage (the same bits as a
// fresh sum, without allocating one), else into a new tensor (slot may be a gradient passed
// through to several inputs, or a view).
void accumulate(Tensor& slot, const Tensor& g) {
  if (!slot.defined()) slot = g;
  else if (slot.sole_owner() && slot.dtype() == DType::kF32) ops::add_inplace(slot, g);  // g cannot share it
  else slot = ops::add(slot, g);
}

// The seed of the walk: grad_root, or 1 for a one-element root.
Tensor walk_seed(const Tensor& root, const Tensor& grad_root) {
  check(root.defined(), "[backward] root tensor is undefined");
  check(root.requires_grad(), "[backward] root does not require grad (was it computed under "
                              "NoGradGuard, or from inputs that do not require grad?)");
  Tensor seed = grad_root;
  if (!seed.defined()) {
    check(root.numel() == 1, "[backward] root must have one element when no gradient is given, got ",
          shape_str(root.shape()));
    seed = Tensor::full(root.shape(), 1.0f);
  }
  check(seed.shape() == root.shape(), "[backward] grad_root shape ", shape_str(seed.shape()),
        " does not match root shape ", shape_str(root.shape()));
  return seed;
}

thread_local LeafGradientObserver* t_observer = nullptr;  // backward()'s observer on this thread

bool is_leaf_edge(const Node& node, size_t i) {
  return node.needs_input_grad(i) && !node.inputs[i].meta->grad_fn;
}

// Steps 1-4 of the header comment for a root with a producer; the leaves' gradients are returned.
// With an observer, each leaf is reported when its last edge has been walked.
LeafGradients walk(const Tensor& root, const Tensor& seed, const LeafGradientObserver* observer = nullptr) {
  NoGradGuard no_grad;  // rules run ops, never record
  auto& meta = root.autograd_meta();
  std::vector<Node*> order = topological_order(meta->grad_fn.get());
  struct ReleaseGraph {  // runs on success and on error
    std::vector<Node*>& nodes;
    ~ReleaseGraph() {
      for (Node* node : nodes) {
        node->backward = nullptr;
        node->inputs.clear();
      }
    }
  } release{order};
  std::unordered_map<Node*, std::vector<Tensor>> grads;
  LeafGradients leaf_grads;
  std::unordered_map<AutogradMeta*, size_t> leaf_slot;
  grads[meta->grad_fn.get()].resize(meta->grad_fn->num_outputs);
  grads[meta->grad_fn.get()][meta->output_index] = seed;
  std::unordered_map<AutogradMeta*, int> edges_left;  // observer: leaf edges not walked yet
  if (observer != nullptr)
    for (Node* node : order)
      for (size_t i = 0; i < node->inputs.size(); ++i)
        if (is_leaf_edge(*node, i)) ++edges_left[node->inputs[i].meta.get()];
  // After a node: its leaf edges are walked; a leaf with none left is final.
  auto report_leaves = [&](const Node& node) {
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      if (!is_leaf_edge(node, i)) continue;
      AutogradMeta* leaf = node.inputs[i].meta.get();
      if (--edges_left[leaf] != 0) continue;
      auto slot = leaf_slot.find(leaf);
      if (slot != leaf_slot.end()) observer->ready()(leaf, leaf_grads[slot->second].second);
    }
  };

  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = *it;
    auto found = grads.find(node);
    if (found == grads.end()) {  // no gradient reached this node
      if (observer != nullptr) report_leaves(*node);
      continue;
    }
    std::vector<Tensor> grad_outputs = std::move(found->second);
    grads.erase(found);
    grad_outputs.resize(node->num_outputs);
    check(static_cast<bool>(node->backward), "[backward] the graph through '", node->name,
          "' was already used by an earlier backward; recompute the forward pass");
    std::vector<Tensor> grad_inputs = node->backward(grad_outputs);
    PERCEIVER_CHECK(grad_inputs.size() == node->inputs.size());
    for (size_t i = 0; i < node->inputs.size(); ++i) {
      if (!node->needs_input_grad(i) || !grad_inputs[i].defined()) continue;
      const Edge& in = node->inputs[i];
      check(grad_inputs[i].shape() == in.shape, "[backward] rule '", node->name,
            "' returned a gradient of shape ", shape_str(grad_inputs[i].shape()), " for input ", i,
            " of shape ", shape_str(in.shape));
      const auto& in_meta = in.meta;
      if (in_meta->grad_fn) {
        auto& slots = grads[in_meta->grad_fn.get()];
        slots.resize(in_meta->grad_fn->num_outputs);
        accumulate(slots[in_meta->output_index], grad_inputs[i]);
      } else {
        auto [it2, fresh] = leaf_slot.emplace(in_meta.get(), leaf_grads.size());
        if (fresh) leaf_grads.emplace_back(in_meta.get(), grad_inputs[i]);
        else accumulate(leaf_grads[it2->second].second, grad_inputs[i]);
      }
    }
    if (observer != nullptr) report_leaves(*node);
  }
  return leaf_grads;
}

thread_local GradientSink* t_sink = nullptr;  // this thread's open sink (batch slices)

}  // namespace

LeafGradientObserver::LeafGradientObserver(Ready ready) : ready_(std::move(ready)), outer_(t_observer) {
  t_observer = this;
}
LeafGradientObserver::~LeafGradientObserver() { t_observer = outer_; }

GradientSink::GradientSink() : outer_(t_sink) { t_sink = this; }
GradientSink::~GradientSink() { t_sink = outer_; }

void GradientSink::add(AutogradMeta* leaf, const Tensor& grad) {
  for (auto& [meta, slot] : index_)
    if (meta == leaf) {
      accumulate(grads_[slot].second, grad);
      return;
    }
  index_.emplace_back(leaf, grads_.size());
  grads_.emplace_back(leaf, grad);
}

LeafGradients GradientSink::take() {
  index_.clear();
  return std::move(grads_);
}

void commit_gradients(LeafGradients& grads) {
  NoGradGuard no_grad;
  for (auto& [leaf, g] : grads) {
    if (!g.defined()) continue;
    if (t_sink != nullptr) t_sink->add(leaf, g);
    else if (leaf->grad.defined()) ops::add_inplace(leaf->grad, g);
    else leaf->grad = g.sole_owner() ? g : g.clone();
    g = Tensor();
  }
}

LeafGradients backward_collect(const Tensor& root, const Tensor& grad_root) {
  const Tensor seed = walk_seed(root, grad_root);
  check(root.autograd_meta()->grad_fn != nullptr, "[backward] backward_collect needs a computed root, got a leaf");
  return walk(root, seed);
}

void backward(const Tensor& root, const Tensor& grad_root) {
  const Tensor seed = walk_seed(root, grad_root);
  auto& meta = root.autograd_meta();
  if (!meta->grad_fn) {  // root is a leaf: its gradient is the seed
    LeafGradients own{{meta.get(), seed.clone()}};
    commit_gradients(own);
    return;
  }
  // Leaf gradients are committed only when the whole walk succeeded.
  LeafGradients leaf_grads = walk(root, seed, t_observer);
  commit_gradients(leaf_grads);
}

}  // namespace perceiver::autograd
