// Data parallelism across processes (see distributed.h).
#include "perceiver/train/distributed.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>

#include "perceiver/core/error.h"

namespace perceiver::train {

GradientReducer::GradientReducer(std::vector<nn::NamedTensor> params, int64_t bucket_bytes)
    : params_(std::move(params)) {
  check(bucket_bytes > 0, "[dist] the gradient bucket size must be positive, got ", bucket_bytes, " bytes");
  where_.resize(params_.size());
  // Last parameter first: backward finishes the head's gradients first and the embeddings' last.
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& p = params_[k].second;
    check(p.dtype() == DType::kF32, "[dist] parameter ", params_[k].first, " is not float32");
    if (buckets_.empty() || static_cast<int64_t>(buckets_.back().data.size() * sizeof(float)) >= bucket_bytes)
      buckets_.emplace_back();
    Bucket& b = buckets_.back();
    where_[k] = {buckets_.size() - 1, b.params.size()};
    b.params.push_back(k);
    b.offset.push_back(static_cast<int64_t>(b.data.size()));
    b.data.resize(b.data.size() + static_cast<size_t>(p.numel()));
  }
  for (Bucket& b : buckets_) b.sum = std::make_unique<dist::OrderedSum>();
  for (size_t k = 0; k < params_.size(); ++k) leaf_index_.emplace_back(params_[k].second.autograd_meta().get(), k);
  std::sort(leaf_index_.begin(), leaf_index_.end());
}

void GradientReducer::begin_step(bool overlap) {
  for (Bucket& b : buckets_) {
    b.ready = 0;
    b.sum = std::make_unique<dist::OrderedSum>();
  }
  overlapped_ = 0;
  observer_.reset();
  if (overlap && dist::active())
    observer_ = std::make_unique<autograd::LeafGradientObserver>(
        [this](autograd::AutogradMeta* leaf, const Tensor& grad) { on_ready(leaf, grad); });
}

void GradientReducer::on_ready(autograd::AutogradMeta* leaf, const Tensor& grad) {
  auto it = std::lower_bound(leaf_index_.begin(), leaf_index_.end(), std::make_pair(leaf, size_t(0)));
  if (it != leaf_index_.end() && it->first == leaf) {
    const auto [bi, slot] = where_[it->second];
    Bucket& b = buckets_[bi];
    const Tensor& p = params_[it->second].second;
    check(grad.dtype() == DType::kF32 && grad.numel() == p.numel(), "[dist] gradient of ", params_[it->second].first,
          " is not a float32 tensor of its parameter's size");
    const Tensor g = grad;
    std::memcpy(b.data.data() + b.offset[slot], g.f32(), sizeof(float) * static_cast<size_t>(g.numel()));
    if (++b.ready == b.params.size()) {
      start(bi);
      ++overlapped_;
    }
  }
  for (Bucket& b : buckets_)  // let the buckets in flight advance between backward's ops
    if (b.sum->started()) b.sum->progress();
}

void GradientReducer::start(size_t bi) {
  Bucket& b = buckets_[bi];
  b.sum->start(b.data.data(), static_cast<int64_t>(b.data.size()), static_cast<int>(bi));
}

void GradientReducer::finish_step() {
  const auto t0 = std::chrono::steady_clock::now();
  observer_.reset();
  // Which parameters have a gradient on some rank (the others keep none, as in one process).
  std::vector<int64_t> has_grad(params_.size());
  for (size_t k = 0; k < params_.size(); ++k) has_grad[k] = params_[k].second.grad().defined() ? 1 : 0;
  // Buckets not started during backward: packed from the committed gradients (zero if none).
  for (size_t bi = 0; bi < buckets_.size(); ++bi) {
    Bucket& b = buckets_[bi];
    if (b.sum->started()) continue;
    for (size_t s = 0; s < b.params.size(); ++s) {
      const Tensor g = params_[b.params[s]].second.grad();
      float* dst = b.data.data() + b.offset[s];
      const size_t n = static_cast<size_t>(params_[b.params[s]].second.numel());
      if (g.defined()) std::memcpy(dst, g.f32(), sizeof(float) * n);
      else std::fill(dst, dst + n, 0.0f);
    }
    start(bi);
  }
  for (Bucket& b : buckets_) b.sum->wait("the gradient sum");
  dist::allreduce_max(has_grad, "the gradients' presence");
  for (Bucket& b : buckets_) {
    for (size_t s = 0; s < b.params.size(); ++s) {
      Tensor& p = params_[b.params[s]].second;
      if (!has_grad[b.params[s]]) continue;
      Tensor& g = p.autograd_meta()->grad;
      if (!g.defined() || !g.sole_owner()) g = Tensor::empty(p.shape(), DType::kF32);
      std::memcpy(g.f32(), b.data.data() + b.offset[s], sizeof(float) * static_cast<size_t>(p.numel()));
    }
  }
  exposed_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void broadcast_training_state(nn::Module& model, optim::Optimizer& optimizer, int64_t& step) {
  if (!dist::active()) return;
  for (auto& [name, t] : model.state_dict()) dist::broadcast(t.raw_data(), static_cast<int64_t>(t.nbytes()), 0, "the initial weights");
  std::map<std::string, Tensor> state;
  for (auto& [name, t] : optimizer.state_tensors()) {
    Tensor c = t.clone();
    dist::broadcast(c.raw_data(), static_cast<int64_t>(c.nbytes()), 0, "the optimizer state");
    state[name] = c;
  }
  dist::broadcast(&step, sizeof(step), 0, "the step");
  optimizer.load_state(state, step);
}

namespace {

uint64_t fnv1a(const void* data, size_t n, uint64_t h) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

}  // namespace

void check_replicas_identical(nn::Module& model, const optim::Optimizer& optimizer, int64_t step) {
  if (!dist::active()) return;
  uint64_t h[2] = {14695981039346656037ULL, 14695981039346656037ULL};
  for (auto& [name, t] : model.state_dict()) h[0] = fnv1a(t.cdata(), t.nbytes(), h[0]);
  for (auto& [name, t] : optimizer.state_tensors()) h[1] = fnv1a(t.cdata(), t.nbytes(), h[1]);
  std::vector<uint64_t> all(2 * static_cast<size_t>(dist::size()));
  dist::allgather(h, sizeof(h), all.data(), "the replica check");
  for (int r = 1; r < dist::size(); ++r)
    for (int part = 0; part < 2; ++part)
      if (all[2 * r + part] != all[part])
        dist::abort_job("after step " + std::to_string(step) + ", rank " + std::to_string(r) + "'s " +
                        (part == 0 ? "parameters" : "optimizer state") + " differ from rank 0's: the replicas diverged");
}

EvalResult evaluate_distributed(const Task& task, int64_t batch_size) {
  const int64_t t = task.test_size(), n = dist::size(), r = dist::rank();
  EvalResult mine = task.evaluate(batch_size, t * r / n, t * (r + 1) / n - t * r / n);
  if (!dist::active()) return mine;
  // count, correct, num_classes, loss, regression, correct_strict, then the confusion matrix and
  // the sums in name order (the same sizes and names on every rank: one task)
  std::vector<double> packed = {static_cast<double>(mine.count), static_cast<double>(mine.correct),
                                static_cast<double>(mine.num_classes), mine.loss, mine.regression ? 1.0 : 0.0,
                                static_cast<double>(mine.correct_strict)};
  for (int64_t c : mine.confusion) packed.push_back(static_cast<double>(c));
  for (const auto& [k, v] : mine.sums) packed.push_back(v);  // the same names on every rank (one task)
  std::vector<double> all(packed.size() * static_cast<size_t>(n));
  dist::allgather(packed.data(), static_cast<int64_t>(packed.size() * sizeof(double)), all.data(), "the evaluation");
  EvalResult merged;
  for (int64_t k = 0; k < n; ++k) {
    const double* p = all.data() + k * static_cast<int64_t>(packed.size());
    EvalResult e;
    e.count = static_cast<int64_t>(p[0]);
    e.correct = static_cast<int64_t>(p[1]);
    e.num_classes = static_cast<int64_t>(p[2]);
    e.loss = p[3];
    e.regression = p[4] != 0.0;
    e.correct_strict = static_cast<int64_t>(p[5]);
    size_t i = 6;
    for (; i < 6 + mine.confusion.size(); ++i) e.confusion.push_back(static_cast<int64_t>(p[i]));
    for (const auto& [name, v] : mine.sums) e.sums[name] = p[i++];
    merged.merge(e);
  }
  return merged;
}

}  // namespace perceiver::train
