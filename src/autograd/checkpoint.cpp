// ag::checkpoint: one tape node standing for a whole segment; its rule re-runs the segment with
// recording on and calls autograd::backward on that inner graph (a nested, independent walk:
// the inner nodes are released when it returns).
#include "perceiver/autograd/checkpoint.h"

#include <optional>

#include "perceiver/autograd/grad_mode.h"
#include "perceiver/autograd/tape.h"

namespace perceiver::ag {
namespace {
thread_local int g_recomputing = 0;  // nesting depth of segment re-runs on this thread
struct RecomputeScope {
  RecomputeScope() { ++g_recomputing; }
  ~RecomputeScope() { --g_recomputing; }
};
}  // namespace

bool recomputing() { return g_recomputing > 0; }

Tensor checkpoint(const Segment& fn, const std::vector<Tensor>& inputs, Rng* rng,
                  bool params_need_grad) {
  bool inputs_need_grad = false;
  for (const Tensor& t : inputs) inputs_need_grad |= t.defined() && t.requires_grad();
  if (!autograd::grad_enabled() || !(inputs_need_grad || params_need_grad)) return fn(inputs, rng);

  std::optional<Rng> rng_before;
  if (rng != nullptr) rng_before = *rng;
  Tensor y;
  {
    autograd::NoGradGuard no_grad;  // keep no intermediate of the segment
    y = fn(inputs, rng);
  }
  autograd::record("checkpoint", inputs, {&y},
                   [fn, inputs, rng_before](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                     // 1. recompute with recording on, from leaves that alias the inputs
                     autograd::EnableGradGuard grad_on;
                     std::vector<Tensor> leaves;
                     leaves.reserve(inputs.size());
                     for (const Tensor& t : inputs) {
                       Tensor leaf = t.defined() ? t.detach() : Tensor();
                       if (t.defined() && t.requires_grad()) leaf.set_requires_grad(true);
                       leaves.push_back(leaf);
                     }
                     std::optional<Rng> replay = rng_before;
                     Tensor out;
                     {
                       RecomputeScope recompute;
                       out = fn(leaves, replay ? &*replay : nullptr);
                     }
                     // 2. backward through the recomputed graph: the inputs' gradients are
                     //    returned, the parameters' committed here (into their grad, or the
                     //    batch slice's GradientSink)
                     std::vector<Tensor> grads(leaves.size());
                     if (!out.requires_grad() || !g[0].defined()) return grads;
                     autograd::LeafGradients inner = autograd::backward_collect(out, g[0]);
                     for (auto& [meta, grad] : inner)
                       for (size_t i = 0; i < leaves.size(); ++i)
                         if (leaves[i].defined() && leaves[i].requires_grad() && leaves[i].autograd_meta().get() == meta) {
                           grads[i] = std::move(grad);
                           break;
                         }
                     autograd::commit_gradients(inner);
                     return grads;
                   });
  return y;
}

}  // namespace perceiver::ag
