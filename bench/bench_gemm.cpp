// GEMM providers (oneDNN dnnl_sgemm, OpenBLAS cblas_sgemm) through cpu::gemm on the shapes a
// Fashion-MNIST Perceiver runs, plus 1024^3 for peak. Counter GFLOPS = 2*m*n*k per second.
// Threads follow OMP_NUM_THREADS; OpenBLAS kernels follow OPENBLAS_CORETYPE (see BENCHMARKS.md).
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#include <string>
#include <vector>

#include "kernels/cpu/gemm.h"
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
};

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
}

}  // namespace

int main(int argc, char** argv) {
  for (GemmProvider p : {GemmProvider::kOneDNN, GemmProvider::kOpenBLAS})
    for (const Shape& s : kShapes)
      benchmark::RegisterBenchmark(
          (std::string("gemm/") + perceiver::gemm_provider_name(p) + "/" + s.name).c_str(),
          [p, &s](benchmark::State& st) { run_gemm(st, p, s); })
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
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
