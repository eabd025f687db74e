// The non-GEMM kernels as a share of the machine's measured limits (bench/machine_peak.h, taken
// by this program on the same threads before the kernels run): memory-bound kernels report
// GB/s (bytes each pass must read + write, counted once) and pct_bw = GB/s / STREAM-triad GB/s;
// the fused attention reports GFLOP/s (4 N M D multiply-adds x 2 per head) and pct_peak of the
// fp32 (or bf16) FMA peak. Shapes are those of the vision-perceiver-fourier configuration at
// batch 1 (512 latents x 1024, 50,176 inputs) and of the Fashion-MNIST default (batch 64).
// Threads follow OMP_NUM_THREADS.
#include <benchmark/benchmark.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/small_gemm.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/layer_norm.h"
#include "kernels/cpu/optimizer.h"
#include "kernels/cpu/reduce.h"
#include "machine_peak.h"
#include "perceiver/core/parallel.h"

namespace {

perceiver::bench::MachinePeak g_peak;

std::vector<float> filled(int64_t n, float scale) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>((i * 37) % 101 - 50) / 50.0f;
  return v;
}

void report_bytes(benchmark::State& state, double bytes_per_iter) {
  const double gb = bytes_per_iter * 1e-9 * double(state.iterations());
  state.counters["GBps"] = benchmark::Counter(gb, benchmark::Counter::kIsRate);
  state.counters["pct_bw"] = benchmark::Counter(gb * 100.0 / g_peak.triad_gbs, benchmark::Counter::kIsRate);
}

// layer norm forward over rows x cols: reads x, writes y (+ mean, rstd)
void BM_layer_norm_forward(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const std::vector<float> x = filled(rows * cols, 1.0f), w = filled(cols, 0.5f), b = filled(cols, 0.1f);
  std::vector<float> y(x.size()), mean(rows), rstd(rows);
  for (auto _ : state) {
    perceiver::cpu::layer_norm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), rows,
                                       cols, 1e-5f);
    benchmark::ClobberMemory();
  }
  report_bytes(state, 2.0 * 4.0 * double(rows * cols));
}

void BM_layer_norm_backward(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const std::vector<float> x = filled(rows * cols, 1.0f), dy = filled(rows * cols, 0.3f), w = filled(cols, 0.5f);
  std::vector<float> dx(x.size()), dw(cols), db(cols), mean(rows, 0.0f), rstd(rows, 1.0f);
  for (auto _ : state) {
    perceiver::cpu::layer_norm_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(),
                                        mean.data(), rstd.data(), rows, cols);
    benchmark::ClobberMemory();
  }
  report_bytes(state, 3.0 * 4.0 * double(rows * cols));  // reads x, dy; writes dx
}

void BM_gelu_forward(benchmark::State& state) {
  const int64_t n = state.range(0);
  const std::vector<float> x = filled(n, 3.0f);
  std::vector<float> y(x.size());
  for (auto _ : state) {
    perceiver::cpu::gelu_forward(y.data(), x.data(), n);
    benchmark::ClobberMemory();
  }
  report_bytes(state, 2.0 * 4.0 * double(n));
}

void BM_softmax_forward(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const std::vector<float> x = filled(rows * cols, 4.0f);
  std::vector<float> y(x.size());
  for (auto _ : state) {
    perceiver::cpu::softmax_forward(y.data(), x.data(), rows, cols);
    benchmark::ClobberMemory();
  }
  report_bytes(state, 2.0 * 4.0 * double(rows * cols));
}

void BM_adamw_update(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::vector<float> p = filled(n, 1.0f), g = filled(n, 0.1f), m(n, 0.0f), v(n, 0.0f);
  for (auto _ : state) {
    perceiver::cpu::adamw_update(p.data(), g.data(), m.data(), v.data(), n, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f,
                                 0.1f, 0.001f, nullptr);
    benchmark::ClobberMemory();
  }
  report_bytes(state, 7.0 * 4.0 * double(n));  // reads p, g, m, v; writes p, m, v
}

// The trainer's per-step NaN/Inf scan of parameters and optimizer state (3 x the parameters):
// compare with one training step (bench_train_step) for its overhead.
void BM_count_nonfinite(benchmark::State& state) {
  const int64_t n = state.range(0);
  const std::vector<float> x = filled(n, 0.5f);
  int64_t first = 0, total = 0;
  for (auto _ : state) {
    total += perceiver::cpu::count_nonfinite(x.data(), n, &first);
    benchmark::DoNotOptimize(total);
  }
  report_bytes(state, 4.0 * double(n));
}

void BM_f32_to_bf16(benchmark::State& state) {
  const int64_t n = state.range(0);
  const std::vector<float> x = filled(n, 2.0f);
  std::vector<uint16_t> y(static_cast<size_t>(n));
  for (auto _ : state) {
    perceiver::cpu::f32_to_bf16(x.data(), y.data(), n);
    benchmark::ClobberMemory();
  }
  report_bytes(state, 6.0 * double(n));
}

// One product inside attention: args m, n, k, trans_a, library (0 small_gemm, 1 cpu::gemm).
void BM_small_gemm(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const bool ta = state.range(3) != 0, library = state.range(4) != 0;
  const std::vector<float> a = filled(m * k, 0.5f), b = filled(k * n, 0.25f);
  std::vector<float> c(static_cast<size_t>(m * n));
  for (auto _ : state) {
    if (library)
      perceiver::cpu::gemm(ta, false, m, n, k, 1.0f, a.data(), ta ? m : k, b.data(), n, 0.0f, c.data(), n);
    else
      perceiver::cpu::small_gemm(ta, m, n, k, 1.0f, a.data(), ta ? m : k, b.data(), n, 0.0f, c.data(), n);
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPS"] =
      benchmark::Counter(2.0 * double(m * n * k) * 1e-9 * double(state.iterations()), benchmark::Counter::kIsRate);
}

// Fused attention forward, one batch: args N, M, heads, head dim; precision 0 f32, 1 bf16.
void BM_attention_forward(benchmark::State& state) {
  const int64_t n = state.range(0), m = state.range(1), heads = state.range(2), d = state.range(3);
  const bool bf16 = state.range(4) != 0;
  const perceiver::cpu::AttentionShape s{1, n, m, heads, d, d};
  const std::vector<float> q = filled(n * heads * d, 1.0f), k = filled(m * heads * d, 1.0f),
                           v = filled(m * heads * d, 1.0f);
  std::vector<uint16_t> q16(q.size()), k16(k.size()), v16(v.size());
  perceiver::cpu::f32_to_bf16(q.data(), q16.data(), static_cast<int64_t>(q.size()));
  perceiver::cpu::f32_to_bf16(k.data(), k16.data(), static_cast<int64_t>(k.size()));
  perceiver::cpu::f32_to_bf16(v.data(), v16.data(), static_cast<int64_t>(v.size()));
  std::vector<float> out(n * heads * d), lse(heads * n);
  const float scale = 1.0f / 32.0f;
  for (auto _ : state) {
    if (bf16)
      perceiver::cpu::attention_forward_bf16(s, q16.data(), k16.data(), v16.data(), nullptr, scale, out.data(),
                                             lse.data());
    else
      perceiver::cpu::attention_forward(s, q.data(), k.data(), v.data(), nullptr, scale, out.data(), lse.data());
    benchmark::ClobberMemory();
  }
  const double gflop = 4.0 * double(n) * double(m) * double(d) * double(heads) * 1e-9 * double(state.iterations());
  state.counters["GFLOPS"] = benchmark::Counter(gflop, benchmark::Counter::kIsRate);
  const double peak = bf16 ? g_peak.bf16_gflops : g_peak.f32_gflops;
  if (peak > 0) state.counters["pct_peak"] = benchmark::Counter(gflop * 100.0 / peak, benchmark::Counter::kIsRate);
}

// Attention forward + backward of a training step: args B, N, M, heads, head dim; precision 0 f32,
// 1 bf16 (q, k, v, out saved in bf16 as mixed-precision training saves them).
void BM_attention_train(benchmark::State& state) {
  const int64_t b = state.range(0), n = state.range(1), m = state.range(2), heads = state.range(3),
                d = state.range(4);
  const bool bf16 = state.range(5) != 0;
  const perceiver::cpu::AttentionShape s{b, n, m, heads, d, d};
  auto noise = [](int64_t count, float seed) {  // varied values, so the softmax is not uniform
    std::vector<float> x(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) x[i] = 0.5f * std::sin(0.37f * static_cast<float>(i) + seed);
    return x;
  };
  const std::vector<float> q = noise(b * n * heads * d, 1), k = noise(b * m * heads * d, 2),
                           v = noise(b * m * heads * d, 3), dout = noise(b * n * heads * d, 4);
  auto to16 = [](const std::vector<float>& x) {
    std::vector<uint16_t> y(x.size());
    perceiver::cpu::f32_to_bf16(x.data(), y.data(), static_cast<int64_t>(x.size()));
    return y;
  };
  const std::vector<uint16_t> q16 = to16(q), k16 = to16(k), v16 = to16(v);
  std::vector<float> out(q.size()), lse(static_cast<size_t>(b * heads * n)), dq(q.size()), dk(k.size()),
      dv(v.size());
  std::vector<uint16_t> out16(out.size());
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  for (auto _ : state) {
    if (bf16) {
      perceiver::cpu::attention_forward_bf16(s, q16.data(), k16.data(), v16.data(), nullptr, scale, out.data(),
                                             lse.data());
      perceiver::cpu::f32_to_bf16(out.data(), out16.data(), static_cast<int64_t>(out.size()));
      perceiver::cpu::attention_backward_bf16(s, dout.data(), q16.data(), k16.data(), v16.data(), out16.data(),
                                              lse.data(), nullptr, scale, dq.data(), dk.data(), dv.data());
    } else {
      perceiver::cpu::attention_forward(s, q.data(), k.data(), v.data(), nullptr, scale, out.data(), lse.data());
      perceiver::cpu::attention_backward(s, dout.data(), q.data(), k.data(), v.data(), out.data(), lse.data(),
                                         nullptr, scale, dq.data(), dk.data(), dv.data());
    }
    benchmark::ClobberMemory();
  }
  // forward 2 products, backward 4 (the score recomputation is not counted): 6 x 2 N M D per head
  const double gflop = 12.0 * double(b * heads) * double(n) * double(m) * double(d) * 1e-9 *
                       double(state.iterations());
  state.counters["GFLOPS"] = benchmark::Counter(gflop, benchmark::Counter::kIsRate);
}

}  // namespace

// vision-perceiver-fourier, batch 1: latents 512 x 1024, inputs 50,176 x 261
BENCHMARK(BM_layer_norm_forward)->Args({512, 1024})->Args({50176, 261})->Args({64 * 784, 34})->UseRealTime();
BENCHMARK(BM_layer_norm_backward)->Args({512, 1024})->Args({50176, 261})->UseRealTime();
BENCHMARK(BM_gelu_forward)->Arg(512 * 1024)->Arg(64 * 32 * 512)->UseRealTime();
BENCHMARK(BM_softmax_forward)->Args({64, 10})->Args({512, 4096})->UseRealTime();
BENCHMARK(BM_adamw_update)->Arg(580811)->Arg(48440627)->UseRealTime();
BENCHMARK(BM_count_nonfinite)->Arg(3 * 580811)->Arg(3 * 48440627)->UseRealTime();
BENCHMARK(BM_f32_to_bf16)->Arg(50176 * 1024)->Arg(512 * 1024)->UseRealTime();
// the products of a ViT head (50 tokens, head dim 32) and the Fashion-MNIST cross-attention (32
// latents, 784 inputs, head dim 35), ours and the library's
BENCHMARK(BM_small_gemm)
    ->Args({50, 50, 32, 0, 0})->Args({50, 50, 32, 0, 1})->Args({50, 32, 50, 1, 0})->Args({50, 32, 50, 1, 1})
    ->Args({784, 32, 35, 0, 0})->Args({784, 32, 35, 0, 1})->Args({32, 35, 784, 1, 0})->Args({32, 35, 784, 1, 1})
    ->UseRealTime();
// cross-attention (1 head of 1024 over 50,176 inputs) and a latent self-attention (8 x 128)
BENCHMARK(BM_attention_forward)
    ->Args({512, 50176, 1, 1024, 0})->Args({512, 50176, 1, 1024, 1})
    ->Args({512, 512, 8, 128, 0})->Args({512, 512, 8, 128, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// training shapes: the Fashion-MNIST default's cross-attention (head dim 35) and latent
// self-attention, the language perceiver's cross-attention (8 heads of 32 over 2,048 bytes) and
// self-attention (8 heads of 160), at the batch sizes their training steps use
BENCHMARK(BM_attention_train)
    ->Args({64, 32, 784, 1, 35, 0})->Args({64, 32, 784, 1, 35, 1})
    ->Args({64, 32, 32, 4, 32, 0})->Args({64, 32, 32, 4, 32, 1})
    ->Args({64, 50, 50, 4, 32, 0})->Args({64, 50, 50, 4, 32, 1})
    ->Args({64, 32, 784, 1, 128, 0})->Args({64, 32, 784, 1, 128, 1})
    ->Args({8, 256, 2048, 8, 32, 0})->Args({8, 256, 2048, 8, 32, 1})
    ->Args({8, 256, 256, 8, 160, 0})->Args({8, 256, 256, 8, 160, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
  g_peak = perceiver::bench::measure_machine_peak(perceiver::num_threads());
  perceiver::bench::add_peak_context(g_peak);
  benchmark::AddCustomContext("threads", std::to_string(perceiver::num_threads()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
