// Batch slices on threads (see data_parallel.h).
#include "perceiver/train/data_parallel.h"

#include <algorithm>

#include "perceiver/autograd/tape.h"
#include "perceiver/core/error.h"
#include "perceiver/core/parallel.h"
#include "perceiver/data/optical_flow.h"

namespace perceiver::train {
namespace {

// Rows of dim 0 [begin, end) of every batch-major tensor (dim 0 == b); others pass whole.
models::TensorMap slice_batch(const models::TensorMap& batch, int64_t b, int64_t begin, int64_t end) {
  models::TensorMap out;
  for (const auto& [name, t] : batch)
    out[name] = !t.shape().empty() && t.dim(0) == b ? t.slice0(begin, end - begin) : t;
  return out;
}

// The predictions a loss averages over: labels >= 0 (int32 "labels": classes, masked bytes,
// tags), the known flow vectors of a float32 (..., 2) "target" (optical flow), else one per example.
int64_t predictions(const models::TensorMap& slice, int64_t rows) {
  if (auto t = slice.find("target"); t != slice.end() && t->second.dtype() == DType::kF32 && t->second.rank() >= 1 &&
                                     t->second.dim(-1) == 2) {
    const float* f = t->second.f32();
    int64_t n = 0;
    for (int64_t i = 0; i < t->second.numel() / 2; ++i) n += data::flow_known(f[2 * i], f[2 * i + 1]);
    return n;
  }
  auto it = slice.find("labels");
  if (it == slice.end() || it->second.dtype() != DType::kI32) return rows;
  const int32_t* y = it->second.data<int32_t>();
  return std::count_if(y, y + it->second.numel(), [](int32_t v) { return v >= 0; });
}

int64_t batch_rows(const models::TensorMap& batch) {
  for (const auto& [name, t] : batch)
    if (!t.shape().empty()) return t.dim(0);
  throw_error("[train] a training batch needs at least one tensor with a batch dimension");
}

}  // namespace

// Batch norm keeps running statistics as buffers.
bool has_batch_statistics(models::Model& model) {
  bool found = false;
  model.visit_buffers([&](const std::string& name, Tensor&) {
    found |= name.size() >= 12 && name.compare(name.size() - 12, 12, "running_mean") == 0;
  });
  return found;
}

int batch_slices(const std::string& parallelism, int threads, int64_t batch, models::Model& model) {
  check(parallelism == "auto" || parallelism == "batch" || parallelism == "intra_op",
        "[train] train.parallelism: expected \"auto\", \"batch\" or \"intra_op\", got \"", parallelism, "\"");
  if (parallelism == "intra_op" || threads < 2 || batch < 2) return 1;
  if (has_batch_statistics(model)) {
    check(parallelism != "batch", "[train] train.parallelism \"batch\": this model normalises with batch "
          "statistics (batch norm), which slices of the batch would change; use \"intra_op\" or \"auto\"");
    return 1;
  }
  const int slices = static_cast<int>(std::min<int64_t>(threads, batch));
  if (parallelism == "batch") return slices;
  // auto, from measurements at 2 threads (docs/BENCHMARKS.md, "Threads"): the Fashion-MNIST
  // Perceiver (0.58M parameters, batch 64) steps 1.26x (fp32) / 1.38x (bf16) faster in slices;
  // vision-perceiver-fourier (48M, batch 2) 1.07x in fp32 but 0.84x in bf16 (each slice rounds
  // every weight to bf16 again) with 5-20% more memory. So: slices for models whose extra
  // gradient copies stay under 64 MiB, with at least two examples per slice.
  const double extra_gradients = 4.0 * static_cast<double>(model.num_parameters()) * (slices - 1);
  return batch >= 2 * slices && extra_gradients <= 64.0 * 1048576.0 ? slices : 1;
}

StepLoss forward_backward(const models::TensorMap& batch, int slices, Rng& rng, const SliceLoss& loss, int rank,
                          int ranks) {
  StepLoss result;
  check(slices >= 1 && ranks >= 1 && rank >= 0 && rank < ranks, "[train] forward_backward: bad split: rank ", rank,
        " of ", ranks, ", ", slices, " slices");
  if (slices == 1 && ranks == 1) {
    Tensor l = loss(batch, &rng, &result.stats);
    result.loss = l.item();
    autograd::backward(l);
    return result;
  }
  // Parts p = 0 .. P-1 of the whole batch, P = ranks x slices; this process runs its ranks's.
  const int parts_total = ranks * slices;
  const int64_t b = batch_rows(batch);
  check(ranks > 1 || slices <= b, "[train] cannot split a batch of ", b, " into ", slices, " slices");
  std::vector<models::TensorMap> parts(slices);
  std::vector<int64_t> counts(slices);
  std::vector<Rng> rngs;
  int64_t total = 0;
  for (int p = 0; p < parts_total; ++p) {  // every part's seed and count, so each rank sees the whole batch's
    const int64_t begin = b * p / parts_total, end = b * (p + 1) / parts_total;
    const uint64_t seed = (static_cast<uint64_t>(rng.next_u32()) << 32) | rng.next_u32();
    const bool mine = p / slices == rank;
    // a part may be empty: the epoch's last batch can hold fewer examples than there are processes
    models::TensorMap part = begin < end ? slice_batch(batch, b, begin, end) : models::TensorMap();
    const int64_t count = begin < end ? predictions(part, end - begin) : 0;
    total += count;
    if (!mine) continue;
    const int s = p % slices;
    parts[s] = std::move(part);
    counts[s] = count;
    rngs.emplace_back(seed, 0x511ce000ULL + static_cast<uint64_t>(p));
  }
  std::vector<float> losses(slices, 0.0f);
  std::vector<EvalResult> stats(slices);
  std::vector<autograd::LeafGradients> grads(slices);
  // mean over the batch = sum over parts of (part mean) x (part's share of the predictions)
  auto run_part = [&](int s) {
    if (counts[s] == 0) return;  // nothing to predict in this part (e.g. no masked byte)
    const float weight = static_cast<float>(static_cast<double>(counts[s]) / static_cast<double>(total));
    Tensor l = loss(parts[s], &rngs[s], &stats[s]);
    losses[s] = l.item() * weight;
    autograd::backward(l, Tensor::full(l.shape(), weight));
  };
  if (slices == 1) {
    run_part(0);  // one part here: its gradients go straight to the parameters (and may be observed)
  } else {
    run_concurrently(slices, [&](int s) {
      autograd::GradientSink sink;
      run_part(s);
      grads[s] = sink.take();
    }, std::min(slices, num_threads()));
    // Fixed order: slice 0's gradients first, so the sum never depends on which thread ended first.
    for (int s = 0; s < slices; ++s) autograd::commit_gradients(grads[s]);
  }
  for (int s = 0; s < slices; ++s) {
    result.loss += losses[s];
    result.stats.merge(stats[s]);
  }
  return result;
}

}  // namespace perceiver::train
