// bf16 x bf16 -> fp32 GEMM (kernels/cpu/gemm.h gemm_bf16). oneDNN 2.6 has no public bf16 GEMM
// call, so the oneDNN provider builds a matmul primitive whose memory descriptors carry the
// row-major strides (a transposed operand is a stride swap, no copy); alpha is an output scale
// and beta a sum post-op. Primitives are cached per thread by shape, strides, alpha, beta and
// OpenMP team size (creating one costs far more than a small GEMM).
#include <oneapi/dnnl/dnnl.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/cpu/convert.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_common.h"
#include "perceiver/core/gemm_provider.h"

namespace perceiver::cpu {
namespace {

using detail::OmpSingleThread;

void fail(const char* what, dnnl_status_t st) {  // internal invariant: shapes were validated
  std::fprintf(stderr, "[gemm_bf16] %s failed with oneDNN status %d\n", what, static_cast<int>(st));
  std::abort();
}

dnnl_engine_t engine() {
  static dnnl_engine_t e = [] {
    dnnl_engine_t made = nullptr;
    if (dnnl_status_t st = dnnl_engine_create(&made, dnnl_cpu, 0); st != dnnl_success)
      fail("dnnl_engine_create", st);
    return made;
  }();
  return e;
}

struct Key {
  bool ta, tb;
  int64_t m, n, k, lda, ldb, ldc;
  float alpha, beta;
  int threads;
  bool operator==(const Key& o) const {
    return ta == o.ta && tb == o.tb && m == o.m && n == o.n && k == o.k && lda == o.lda &&
           ldb == o.ldb && ldc == o.ldc && alpha == o.alpha && beta == o.beta &&
           threads == o.threads;
  }
};

struct KeyHash {
  size_t operator()(const Key& x) const {
    size_t h = (size_t(x.ta) << 1) | size_t(x.tb);
    for (int64_t v : {x.m, x.n, x.k, x.lda, x.ldb, x.ldc, int64_t(x.threads)})
      h = h * 1000003u ^ std::hash<int64_t>()(v);
    return h * 1000003u ^ std::hash<float>()(x.alpha) ^ (std::hash<float>()(x.beta) << 1);
  }
};

// One matmul primitive and its memory descriptors; prim is null where oneDNN has no bf16
// implementation for this CPU (the caller then takes the fp32 fallback).
struct Matmul {
  dnnl_primitive_t prim = nullptr;
  dnnl_memory_desc_t a_md{}, b_md{}, c_md{};
  std::string impl = "fp32 fallback";
  Matmul() = default;
  Matmul(const Matmul&) = delete;
  Matmul& operator=(const Matmul&) = delete;
  ~Matmul() {
    if (prim != nullptr) dnnl_primitive_destroy(prim);
  }
};

std::unique_ptr<Matmul> create(const Key& key) {
  auto mm = std::make_unique<Matmul>();
  const dnnl_dims_t ad = {key.m, key.k}, bd = {key.k, key.n}, cd = {key.m, key.n};
  const dnnl_dims_t as = {key.ta ? 1 : key.lda, key.ta ? key.lda : 1};
  const dnnl_dims_t bs = {key.tb ? 1 : key.ldb, key.tb ? key.ldb : 1};
  const dnnl_dims_t cs = {key.ldc, 1};
  if (dnnl_memory_desc_init_by_strides(&mm->a_md, 2, ad, dnnl_bf16, as) != dnnl_success ||
      dnnl_memory_desc_init_by_strides(&mm->b_md, 2, bd, dnnl_bf16, bs) != dnnl_success ||
      dnnl_memory_desc_init_by_strides(&mm->c_md, 2, cd, dnnl_f32, cs) != dnnl_success)
    return mm;
  dnnl_matmul_desc_t desc;
  if (dnnl_matmul_desc_init(&desc, &mm->a_md, &mm->b_md, nullptr, &mm->c_md) != dnnl_success)
    return mm;
  dnnl_primitive_attr_t attr = nullptr;
  dnnl_post_ops_t post = nullptr;
  dnnl_primitive_attr_create(&attr);
  if (key.alpha != 1.0f) dnnl_primitive_attr_set_output_scales(attr, 1, 0, &key.alpha);
  if (key.beta != 0.0f) {
    dnnl_post_ops_create(&post);
    dnnl_post_ops_append_sum(post, key.beta);
    dnnl_primitive_attr_set_post_ops(attr, post);
  }
  dnnl_primitive_desc_t pd = nullptr;
  if (dnnl_primitive_desc_create(&pd, &desc, attr, engine(), nullptr) == dnnl_success) {
    const char* impl = nullptr;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    // oneDNN's reference matmul is a scalar loop: widening to fp32 and sgemm is far faster.
    const bool reference = impl != nullptr && std::string(impl).rfind("ref", 0) == 0;
    if (!reference && dnnl_primitive_create(&mm->prim, pd) == dnnl_success && impl != nullptr)
      mm->impl = impl;
    dnnl_primitive_desc_destroy(pd);
  }
  if (post != nullptr) dnnl_post_ops_destroy(post);
  dnnl_primitive_attr_destroy(attr);
  return mm;
}

// Per-thread primitive cache (bounded: cleared when it grows past kMaxCached shapes).
const Matmul& cached(const Key& key) {
  constexpr size_t kMaxCached = 512;
  thread_local std::unordered_map<Key, std::unique_ptr<Matmul>, KeyHash> cache;
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  if (cache.size() >= kMaxCached) cache.clear();
  return *cache.emplace(key, create(key)).first->second;
}

dnnl_stream_t stream() {
  struct Holder {
    dnnl_stream_t s = nullptr;
    ~Holder() {
      if (s != nullptr) dnnl_stream_destroy(s);
    }
  };
  thread_local Holder h;
  if (h.s == nullptr) {
    if (dnnl_status_t st = dnnl_stream_create(&h.s, engine(), dnnl_stream_default_flags);
        st != dnnl_success)
      fail("dnnl_stream_create", st);
  }
  return h.s;
}

Key make_key(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, int64_t lda,
             int64_t ldb, float beta, int64_t ldc) {
  return Key{ta, tb, m, n, k, lda, ldb, ldc, alpha, beta, omp_get_max_threads()};
}

// Widen op(A) and op(B) to dense fp32 scratch and run the fp32 GEMM (exact products: bf16
// values are fp32 values; only the accumulation order differs from a native bf16 GEMM).
void gemm_via_f32(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                  const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, float beta,
                  float* c, int64_t ldc) {
  const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k;
  const int64_t b_rows = tb ? n : k, b_cols = tb ? k : n;
  std::vector<float> af(static_cast<size_t>(a_rows * a_cols)), bf(static_cast<size_t>(b_rows * b_cols));
  for (int64_t r = 0; r < a_rows; ++r) bf16_to_f32(a + r * lda, af.data() + r * a_cols, a_cols);
  for (int64_t r = 0; r < b_rows; ++r) bf16_to_f32(b + r * ldb, bf.data() + r * b_cols, b_cols);
  gemm(ta, tb, m, n, k, alpha, af.data(), a_cols, bf.data(), b_cols, beta, c, ldc);
}

void gemm_onednn_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                      const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, float beta,
                      float* c, int64_t ldc) {
  // One thread inside a parallel region too, so that the cache key and oneDNN's plan (made for
  // the team size at creation) both say 1 thread: oneDNN runs nested calls on one thread.
  std::optional<OmpSingleThread> one;
  if (detail::serial_gemm(m, n, k) || in_parallel_region()) one.emplace();
  const Matmul& mm = cached(make_key(ta, tb, m, n, k, alpha, lda, ldb, beta, ldc));
  if (mm.prim == nullptr) {
    gemm_via_f32(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  dnnl_memory_t am = nullptr, bm = nullptr, cm = nullptr;
  dnnl_status_t st = dnnl_memory_create(&am, &mm.a_md, engine(), const_cast<uint16_t*>(a));
  if (st == dnnl_success)
    st = dnnl_memory_create(&bm, &mm.b_md, engine(), const_cast<uint16_t*>(b));
  if (st == dnnl_success) st = dnnl_memory_create(&cm, &mm.c_md, engine(), c);
  if (st != dnnl_success) fail("dnnl_memory_create", st);
  const dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
  st = dnnl_primitive_execute(mm.prim, stream(), 3, args);
  if (st == dnnl_success) st = dnnl_stream_wait(stream());
  if (st != dnnl_success) fail("matmul execute", st);
  dnnl_memory_destroy(am);
  dnnl_memory_destroy(bm);
  dnnl_memory_destroy(cm);
}

// Loops in fp32 (each product is exact in fp32), i-p-j or dot-product order as in gemm_naive.
void gemm_naive_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                     const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, float beta,
                     float* c, int64_t ldc) {
  auto f = [](uint16_t h) {
    float v;
    bf16_to_f32(&h, &v, 1);
    return v;
  };
  for (int64_t i = 0; i < m; ++i) {
    float* crow = c + i * ldc;
    for (int64_t j = 0; j < n; ++j) {
      float acc = 0.0f;
      for (int64_t p = 0; p < k; ++p)
        acc += f(ta ? a[p * lda + i] : a[i * lda + p]) * f(tb ? b[j * ldb + p] : b[p * ldb + j]);
      crow[j] = alpha * acc + (beta == 0.0f ? 0.0f : beta * crow[j]);
    }
  }
}

}  // namespace

void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, float beta,
               float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) {
    detail::scale_c(m, n, beta, c, ldc);
    return;
  }
  switch (gemm_provider()) {
    case GemmProvider::kOneDNN:
      gemm_onednn_bf16(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      break;
    case GemmProvider::kOpenBLAS:  // Debian's OpenBLAS 0.3.21 is built without sbgemm
      gemm_via_f32(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      break;
    case GemmProvider::kNaive:
      gemm_naive_bf16(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      break;
  }
}

std::string gemm_bf16_impl(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k) {
  const int64_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
  return cached(make_key(trans_a, trans_b, m, n, k, 1.0f, lda, ldb, 0.0f, n)).impl;
}

}  // namespace perceiver::cpu
