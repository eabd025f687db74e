// Which library runs every GEMM (CTranslate2 primitives<CPU>::gemm style provider switch).
// Default oneDNN (dnnl_sgemm: fastest fp32 GEMM measured here, docs/BENCHMARKS.md); the
// environment variable PERCEIVER_GEMM=onednn|openblas|naive overrides it at first use.
#pragma once

#include <string>

namespace perceiver {

enum class GemmProvider { kOneDNN, kOpenBLAS, kNaive };

void set_gemm_provider(GemmProvider p);
GemmProvider gemm_provider();
// "onednn" | "openblas" | "naive"; throws Error("[gemm] unknown provider 'x', expected one of: ...")
GemmProvider parse_gemm_provider(const std::string& name);
const char* gemm_provider_name(GemmProvider p);

}  // namespace perceiver
