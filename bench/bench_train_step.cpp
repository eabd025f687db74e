// Training-step and inference throughput of an image-classifier run config (any "type":
// Perceiver, ViT, Perceiver IO, BoTNet; default: the Fashion-MNIST default run), on random
// inputs: forward + backward + AdamW step per iteration, all threads inside each op; the training
// step in fp32 and in bf16 mixed precision (bf16 = 1, train.precision "bf16") side by side.
// Usage: bench_train_step [--benchmark_*] (env PERCEIVER_BENCH_CONFIG=path overrides the config)
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/autograd/tape.h"
#include "perceiver/core/allocator.h"
#include "perceiver/core/parallel.h"
#include "perceiver/models/image_classifier.h"
#include "perceiver/optim/optimizer.h"
#include "perceiver/train/train_config.h"

namespace {

using namespace perceiver;

train::RunConfig bench_config() {
  const char* env = std::getenv("PERCEIVER_BENCH_CONFIG");
  const std::string path = env ? env : std::string(PERCEIVER_BENCH_SOURCE_DIR) + "/configs/fmnist_default.json";
  return train::load_run_config(path);
}

// (B, H, W) for one channel, (B, H, W, C) otherwise: the layout ImageClassifier::forward takes.
Tensor random_images(int64_t b, const models::ImageClassifier& m) {
  Rng rng(1);
  Shape shape = {b, m.image_size()[0], m.image_size()[1]};
  if (m.in_channels() > 1) shape.push_back(m.in_channels());
  Tensor x = Tensor::empty(shape);
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = rng.uniform();
  return x;
}

void train_step(benchmark::State& state) {
  train::RunConfig rc = bench_config();
  set_num_threads(static_cast<int>(state.range(1)));
  const int64_t b = state.range(0);
  auto model_ptr = models::make_image_classifier(rc.model, 0);
  models::ImageClassifier& model = *model_ptr;
  if (state.range(2) == 1) model.set_precision(Precision::kBF16);  // mixed precision
  auto params = model.named_parameters();
  optim::OptimizerOptions oo;
  auto opt = optim::make_optimizer(rc.train.optimizer, params, oo);
  Tensor x = random_images(b, model);
  std::vector<int32_t> labels(b);
  for (int64_t i = 0; i < b; ++i) labels[i] = static_cast<int32_t>(i % model.num_classes());
  Tensor y = Tensor::from_vector_i32({b}, labels);
  for (auto _ : state) {
    // the trainer's classifier step: forward, cross-entropy with smoothing 0.1, backward, AdamW
    Tensor loss = ag::cross_entropy(model.forward(x), y, 0.1f);
    opt->zero_grad();
    autograd::backward(loss);
    opt->step(1e-4f);
    benchmark::DoNotOptimize(loss.item());
  }
  state.counters["samples/s"] = benchmark::Counter(static_cast<double>(b), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_rss_MiB"] = peak_rss_bytes() / 1048576.0;
}

void inference(benchmark::State& state) {
  train::RunConfig rc = bench_config();
  set_num_threads(static_cast<int>(state.range(1)));
  const int64_t b = state.range(0);
  auto model_ptr = models::make_image_classifier(rc.model, 0);
  models::ImageClassifier& model = *model_ptr;
  model.train(false);
  Tensor x = random_images(b, model);
  autograd::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(model.forward(x).f32()[0]);
  state.counters["samples/s"] = benchmark::Counter(static_cast<double>(b), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_rss_MiB"] = peak_rss_bytes() / 1048576.0;
}

// A bad config or model ends the benchmark with its message instead of std::terminate.
template <void (*Body)(benchmark::State&)>
void guarded(benchmark::State& state) {
  try {
    Body(state);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void BM_TrainStep(benchmark::State& state) { guarded<train_step>(state); }
void BM_Inference(benchmark::State& state) { guarded<inference>(state); }

BENCHMARK(BM_TrainStep)->ArgsProduct({{64}, {1, 2}, {0, 1}})->ArgNames({"batch", "threads", "bf16"})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Inference)->ArgsProduct({{64, 500}, {1, 2}})->ArgNames({"batch", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
