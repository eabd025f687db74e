// GEMM providers (oneDNN, OpenBLAS) through cpu::gemm (fp32) and cpu::gemm_bf16 (bf16 inputs,
// fp32 accumulation) on the shapes the Fashion-MNIST Perceiver and the vision / language
// Perceiver IO configurations run, plus 1024^3. Counters: GFLOPS = 2*m*n*k per second, and
// pct_peak = GFLOPS / the fp32 (or bf16) multiply-add peak that this program measures first on
// the same threads (bench/machine_peak.h; printed in the context block with the triad GB/s).
// Threads follow OMP_NUM_THREADS; OpenBLAS kernels follow OPENBLAS_CORETYPE (see BENCHMARKS.md).
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#include <string>
#include <vector>

#include "kernels/cpu/convert.h"
#include "kernels/cpu/gemm.h"
#include "machine_peak.h"
#include "perceiver/core/gemm_provider.h"
#include "perceiver/core/parallel.h"

namespace {

using perceiver::GemmProvider;

struct Shape {
  const char* name;
  int64_t m, n, k;
  bool trans_a, trans_b;
};

// Row counts use batch 32: 32 * 784 pixels = 25088 input rows, 32 * 64 latents = 2048 rows.
const Shape kShapes[] = {
    {"in_proj_34to128", 25088, 128, 34, false, true},    // linear: inputs (C=34) -> D=128
    {"in_proj_64to256", 25088, 256, 64, false, true},    // linear: inputs (C=64) -> D=256
    {"in_proj_dw_256x64", 256, 64, 25088, true, false},  // linear backward dW = dy^T x
    {"lat_1x256to256", 64, 256, 256, false, true},       // one sample's latents, q/k/v/o proj
    {"lat_256to256", 2048, 256, 256, false, true},       // batch of latents, q/k/v/o proj
    {"lat_mlp_256to1024", 2048, 1024, 256, false, true}, // latent MLP up
    {"lat_mlp_1024to256", 2048, 256, 1024, false, true}, // latent MLP down
    {"attn_qkT_64x784x32", 64, 784, 32, false, true},    // cross-attention scores, one head
    {"attn_pv_64x32x784", 64, 32, 784, false, false},    // cross-attention P V
    {"square_1024", 1024, 1024, 1024, false, false},     // peak
    // vision-perceiver-fourier 224x224 (config 2) and language-perceiver (config 3), batch 1
    {"vis_kv_proj_50176x261to1024", 50176, 1024, 261, false, true},  // input -> K or V
    {"vis_lat_512x1024to1024", 512, 1024, 1024, false, true},        // latent proj / MLP
    {"vis_attn_qkT_512x256x1024", 512, 256, 1024, false, true},      // cross scores, key block
    {"vis_attn_pv_512x1024x256", 512, 1024, 256, false, false},      // cross P V, key block
    {"lang_lat_256x1280to1280", 256, 1280, 1280, false, true},       // latent proj / MLP
};

perceiver::bench::MachinePeak g_peak;

void run_gemm(benchmark::State& state, GemmProvider provider, const Shape& s) {
  perceiver::set_gemm_provider(provider);
  const int64_t lda = s.trans_a ? s.m : s.k, ldb = s.trans_b ? s.k : s.n;
  std::vector<float> a(s.m * s.k, 0.5f), b(s.k * s.n, 0.25f), c(s.m * s.n, 0.0f);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 7) * 0.1f;
  perceiver::cpu::gemm(s.trans_a, s.trans_b, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb,
                       0.0f, c.data(), s.n);  // warm-up (threads, packing buffers)
  for (auto _ : state) {
    perceiver::cpu::gemm(s.trans_a, s.trans_b, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb,
                         0.0f, c.data(), s.n);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  const double flops = 2.0 * double(s.m) * double(s.n) * double(s.k);
  state.counters["GFLOPS"] = benchmark::Counter(flops * 1e-9 * double(state.iterations()),
                                                benchmark::Counter::kIsRate);
  state.counters["threads"] = perceiver::num_threads();
  // a rate counter divides by the elapsed time: GFLOP * 100 / peak per second = percent of peak
  state.counters["pct_peak"] =
      benchmark::Counter(flops * 1e-9 * double(state.iterations()) * 100.0 / g_peak.f32_gflops,
                         benchmark::Counter::kIsRate);
}

// bf16 operands converted once outside the timed loop (the ops convert activations per call).
void run_gemm_bf16(benchmark::State& state, GemmProvider provider, const Shape& s) {
  perceiver::set_gemm_provider(provider);
  const int64_t lda = s.trans_a ? s.m : s.k, ldb = s.trans_b ? s.k : s.n;
  std::vector<float> a(s.m * s.k), b(s.k * s.n, 0.25f), c(s.m * s.n, 0.0f);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 7) * 0.1f;
  std::vector<uint16_t> a16(a.size()), b16(b.size());
  perceiver::cpu::f32_to_bf16(a.data(), a16.data(), static_cast<int64_t>(a.size()));
  perceiver::cpu::f32_to_bf16(b.data(), b16.data(), static_cast<int64_t>(b.size()));
  auto call = [&] {
    perceiver::cpu::gemm_bf16(s.trans_a, s.trans_b, s.m, s.n, s.k, 1.0f, a16.data(), lda,
                              b16.data(), ldb, 0.0f, c.data(), s.n);
  };
  call();  // warm-up: primitive creation, threads
  for (auto _ : state) {
    call();
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  const double flops = 2.0 * double(s.m) * double(s.n) * double(s.k);
  const double gflops = flops * 1e-9 * double(state.iterations());
  state.counters["GFLOPS"] = benchmark::Counter(gflops, benchmark::Counter::kIsRate);
  state.counters["threads"] = perceiver::num_threads();
  if (g_peak.bf16_gflops > 0)  // 0: built without AVX512-BF16, no bf16 peak to compare with
    state.counters["pct_peak"] =
        benchmark::Counter(gflops * 100.0 / g_peak.bf16_gflops, benchmark::Counter::kIsRate);
  if (provider == GemmProvider::kOneDNN)
    state.SetLabel(perceiver::cpu::gemm_bf16_impl(s.trans_a, s.trans_b, s.m, s.n, s.k));
}

}  // namespace

int main(int argc, char** argv) {
  g_peak = perceiver::bench::measure_machine_peak(perceiver::num_threads());
  for (GemmProvider p : {GemmProvider::kOneDNN, GemmProvider::kOpenBLAS})
    for (const Shape& s : kShapes) {
      const std::string tail = std::string(perceiver::gemm_provider_name(p)) + "/" + s.name;
      benchmark::RegisterBenchmark(("gemm/" + tail).c_str(),
                                   [p, &s](benchmark::State& st) { run_gemm(st, p, s); })
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark(("gemm_bf16/" + tail).c_str(),
                                   [p, &s](benchmark::State& st) { run_gemm_bf16(st, p, s); })
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    }
  perceiver::bench::add_peak_context(g_peak);
  const dnnl_version_t* v = dnnl_version();
  benchmark::AddCustomContext("onednn", std::to_string(v->major) + "." + std::to_string(v->minor) +
                                            "." + std::to_string(v->patch));
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
  benchmark::AddCustomContext("threads", std::to_string(perceiver::num_threads()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
