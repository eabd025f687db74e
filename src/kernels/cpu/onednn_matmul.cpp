// The oneDNN matmul primitive for the GEMM entry points (see onednn_matmul.h).
#include "kernels/cpu/onednn_matmul.h"

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <unordered_map>

namespace perceiver::cpu::detail {
namespace {

void fail(const char* what, dnnl_status_t st) {  // internal invariant: shapes were validated
  std::fprintf(stderr, "[onednn_matmul] %s failed with oneDNN status %d\n", what, static_cast<int>(st));
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
  MatmulType type;
  bool ta, tb;
  int64_t m, n, k, lda, ldb, ldc;
  float alpha, beta;
  int threads;
  bool operator==(const Key& o) const {
    return type == o.type && ta == o.ta && tb == o.tb && m == o.m && n == o.n && k == o.k && lda == o.lda &&
           ldb == o.ldb && ldc == o.ldc && alpha == o.alpha && beta == o.beta &&
           threads == o.threads;
  }
};

struct KeyHash {
  size_t operator()(const Key& x) const {
    size_t h = (size_t(x.type) << 2) | (size_t(x.ta) << 1) | size_t(x.tb);
    for (int64_t v : {x.m, x.n, x.k, x.lda, x.ldb, x.ldc, int64_t(x.threads)})
      h = h * 1000003u ^ std::hash<int64_t>()(v);
    return h * 1000003u ^ std::hash<float>()(x.alpha) ^ (std::hash<float>()(x.beta) << 1);
  }
};

// One matmul primitive and its memory descriptors; prim is null where oneDNN has no
// non-reference implementation for this type on this CPU (the caller then falls back).
struct Matmul {
  dnnl_primitive_t prim = nullptr;
  dnnl_memory_desc_t a_md{}, b_md{}, c_md{};
  std::string impl = "none";
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
  const dnnl_data_type_t in = key.type == MatmulType::kBF16 ? dnnl_bf16 : dnnl_f32;
  if (dnnl_memory_desc_init_by_strides(&mm->a_md, 2, ad, in, as) != dnnl_success ||
      dnnl_memory_desc_init_by_strides(&mm->b_md, 2, bd, in, bs) != dnnl_success ||
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
    // oneDNN's reference matmul is a scalar loop: the callers' fallbacks are far faster.
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

Key make_key(MatmulType type, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
             int64_t lda, int64_t ldb, float beta, int64_t ldc) {
  return Key{type, ta, tb, m, n, k, lda, ldb, ldc, alpha, beta, omp_get_max_threads()};
}

}  // namespace

bool onednn_matmul(MatmulType type, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                   const void* a, int64_t lda, const void* b, int64_t ldb, float beta, float* c,
                   int64_t ldc) {
  const Matmul& mm = cached(make_key(type, ta, tb, m, n, k, alpha, lda, ldb, beta, ldc));
  if (mm.prim == nullptr) return false;
  dnnl_memory_t am = nullptr, bm = nullptr, cm = nullptr;
  dnnl_status_t st = dnnl_memory_create(&am, &mm.a_md, engine(), const_cast<void*>(a));
  if (st == dnnl_success) st = dnnl_memory_create(&bm, &mm.b_md, engine(), const_cast<void*>(b));
  if (st == dnnl_success) st = dnnl_memory_create(&cm, &mm.c_md, engine(), c);
  if (st != dnnl_success) fail("dnnl_memory_create", st);
  const dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
  st = dnnl_primitive_execute(mm.prim, stream(), 3, args);
  if (st == dnnl_success) st = dnnl_stream_wait(stream());
  if (st != dnnl_success) fail("matmul execute", st);
  dnnl_memory_destroy(am);
  dnnl_memory_destroy(bm);
  dnnl_memory_destroy(cm);
  return true;
}

std::string onednn_matmul_impl(MatmulType type, bool ta, bool tb, int64_t m, int64_t n, int64_t k) {
  const int64_t lda = ta ? m : k, ldb = tb ? k : n;
  return cached(make_key(type, ta, tb, m, n, k, 1.0f, lda, ldb, 0.0f, n)).impl;
}

}  // namespace perceiver::cpu::detail
