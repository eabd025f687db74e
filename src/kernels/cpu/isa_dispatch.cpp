// Dispatchers for the kernels compiled per ISA (kernels/cpu/isa.h): each public
// perceiver::cpu::<kernel> forwards to perceiver::cpu::avx512::<kernel> or ::generic::<kernel>.
// The list below is the one place that names the dispatched kernels and their signatures.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/kv_projection.h"
#include "kernels/cpu/layer_norm.h"
#include "kernels/cpu/optimizer.h"
#include "kernels/cpu/small_gemm.h"

// X(return type, name, (parameters), (arguments))
#define PERCEIVER_DISPATCHED_KERNELS(X)                                                              \
  X(void, gelu_forward, (float* y, const float* x, int64_t n), (y, x, n))                           \
  X(void, gelu_backward, (float* dx, const float* dy, const float* x, int64_t n), (dx, dy, x, n))   \
  X(void, gelu_forward_with_grad, (float* y, float* d, const float* x, int64_t n), (y, d, x, n))     \
  X(void, relu_forward, (float* y, const float* x, int64_t n), (y, x, n))                           \
  X(void, relu_backward, (float* dx, const float* dy, const float* x, int64_t n), (dx, dy, x, n))   \
  X(void, softmax_forward, (float* y, const float* x, int64_t rows, int64_t cols), (y, x, rows, cols)) \
  X(void, softmax_backward, (float* dx, const float* dy, const float* y, int64_t rows, int64_t cols), \
    (dx, dy, y, rows, cols))                                                                         \
  X(float, softmax_row, (float* y, const float* x, int64_t cols), (y, x, cols))                     \
  X(int64_t, attention_key_block, (int64_t rows), (rows))                                           \
  X(bool, attention_small_heads, (const AttentionShape& s), (s))                                    \
  X(void, attention_forward,                                                                        \
    (const AttentionShape& s, const float* q, const float* k, const float* v, const float* mask,    \
     float scale, float* out, float* lse, int64_t key_block),                                       \
    (s, q, k, v, mask, scale, out, lse, key_block))                                                 \
  X(void, attention_forward_bf16,                                                                   \
    (const AttentionShape& s, const uint16_t* q, const uint16_t* k, const uint16_t* v,              \
     const float* mask, float scale, float* out, float* lse, int64_t key_block),                    \
    (s, q, k, v, mask, scale, out, lse, key_block))                                                 \
  X(void, attention_merge,                                                                          \
    (const AttentionShape& s, float* out, float* lse, const float* out_blk, const float* lse_blk),  \
    (s, out, lse, out_blk, lse_blk))                                                                \
  X(void, attention_backward,                                                                       \
    (const AttentionShape& s, const float* dout, const float* q, const float* k, const float* v,     \
     const float* out, const float* lse, const float* mask, float scale, float* dq, float* dk,      \
     float* dv, int64_t key_block),                                                                 \
    (s, dout, q, k, v, out, lse, mask, scale, dq, dk, dv, key_block))                               \
  X(void, attention_backward_bf16,                                                                  \
    (const AttentionShape& s, const float* dout, const uint16_t* q, const uint16_t* k,              \
     const uint16_t* v, const uint16_t* out, const float* lse, const float* mask, float scale,       \
     float* dq, float* dk, float* dv, int64_t key_block),                                           \
    (s, dout, q, k, v, out, lse, mask, scale, dq, dk, dv, key_block))                               \
  X(void, small_gemm,                                                                               \
    (bool trans_a, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,        \
     const float* b, int64_t ldb, float beta, float* c, int64_t ldc),                               \
    (trans_a, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))                                         \
  X(void, f32_to_bf16, (const float* x, uint16_t* y, int64_t n), (x, y, n))                         \
  X(void, bf16_to_f32, (const uint16_t* x, float* y, int64_t n), (x, y, n))                         \
  X(int64_t, kv_projection_forward_workspace, (const KvProjectionShape& sh), (sh))                  \
  X(int64_t, kv_projection_backward_workspace, (const KvProjectionShape& sh), (sh))                 \
  X(void, kv_projection_forward,                                                                    \
    (const KvProjectionShape& sh, const float* x, const float* s, const float* gamma,               \
     const float* beta, const float* wk, const float* bk, const float* wv, const float* bv,         \
     float eps, float* k, float* v, float* mean, float* rstd, float* workspace),                    \
    (sh, x, s, gamma, beta, wk, bk, wv, bv, eps, k, v, mean, rstd, workspace))                      \
  X(void, kv_projection_backward,                                                                   \
    (const KvProjectionShape& sh, const float* dk, const float* dv, const float* x, const float* s, \
     const float* gamma, const float* beta, const float* wk, const float* wv, const float* mean,    \
     const float* rstd, float* dx, float* dgamma, float* dbeta, float* dwk, float* dbk, float* dwv, \
     float* dbv, float* workspace),                                                                 \
    (sh, dk, dv, x, s, gamma, beta, wk, wv, mean, rstd, dx, dgamma, dbeta, dwk, dbk, dwv, dbv,      \
     workspace))                                                                                    \
  X(void, layer_norm_forward,                                                                       \
    (float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,            \
     int64_t rows, int64_t cols, float eps),                                                        \
    (y, mean, rstd, x, w, b, rows, cols, eps))                                                      \
  X(void, layer_norm_backward,                                                                      \
    (float* dx, float* dw, float* db, const float* dy, const float* x, const float* w,              \
     const float* mean, const float* rstd, int64_t rows, int64_t cols),                             \
    (dx, dw, db, dy, x, w, mean, rstd, rows, cols))                                                 \
  X(void, adamw_update,                                                                             \
    (float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2,   \
     float eps, float weight_decay, float bias_correction1, float bias_correction2,                 \
     uint16_t* p_bf16),                                                                             \
    (p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2, p_bf16)) \
  X(LambNorms, lamb_moments,                                                                        \
    (const float* p, const float* g, float* m, float* v, int64_t n, float beta1, float beta2,       \
     float eps, float weight_decay, float bias_correction1, float bias_correction2),                \
    (p, g, m, v, n, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2))           \
  X(void, lamb_apply,                                                                               \
    (float* p, const float* m, const float* v, int64_t n, float step_size, float eps,               \
     float weight_decay, float bias_correction1, float bias_correction2),                           \
    (p, m, v, n, step_size, eps, weight_decay, bias_correction1, bias_correction2))                 \
  X(float, lamb_trust_ratio, (const LambNorms& norms), (norms))                                     \
  X(double, sum_squares_f64, (const float* x, int64_t n), (x, n))                                   \
  X(float, sum_squares, (const float* x, int64_t n), (x, n))                                        \
  X(void, scale_inplace, (float* x, int64_t n, float s), (x, n, s))                                 \
  X(void, ema_update, (float* avg, const float* p, int64_t n, float decay), (avg, p, n, decay))

namespace perceiver::cpu {

#define PERCEIVER_DECLARE_KERNEL(ret, name, params, args) ret name params;
namespace generic {
PERCEIVER_DISPATCHED_KERNELS(PERCEIVER_DECLARE_KERNEL)
bool variant_uses_avx512_bf16();
}  // namespace generic
namespace avx512 {
PERCEIVER_DISPATCHED_KERNELS(PERCEIVER_DECLARE_KERNEL)
bool variant_uses_avx512_bf16();
}  // namespace avx512

namespace {

bool detect_avx512() {
  __builtin_cpu_init();
  const bool base = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  return base && (!avx512::variant_uses_avx512_bf16() || __builtin_cpu_supports("avx512bf16"));
}

KernelIsa initial_isa() {
  const bool avx512_ok = detect_avx512();
  const char* env = std::getenv("PERCEIVER_ISA");
  if (env != nullptr && *env != '\0') {
    if (std::strcmp(env, "generic") == 0) return KernelIsa::kGeneric;
    if (std::strcmp(env, "avx512") == 0) {
      if (avx512_ok) return KernelIsa::kAvx512;
      std::fprintf(stderr, "[isa] PERCEIVER_ISA=avx512 but this CPU lacks the AVX-512 features the "
                           "variant was built for; using generic\n");
      return KernelIsa::kGeneric;
    }
    // Read lazily from inside kernels, which must not throw: report and keep the default.
    std::fprintf(stderr, "[isa] unknown PERCEIVER_ISA '%s', expected generic or avx512; using %s\n", env,
                 avx512_ok ? "avx512" : "generic");
  }
  return avx512_ok ? KernelIsa::kAvx512 : KernelIsa::kGeneric;
}

std::atomic<KernelIsa>& isa_slot() {
  static std::atomic<KernelIsa> slot{initial_isa()};
  return slot;
}

}  // namespace

KernelIsa kernel_isa() { return isa_slot().load(std::memory_order_relaxed); }

bool cpu_supports_avx512_variant() {
  static const bool ok = detect_avx512();
  return ok;
}

bool set_kernel_isa(KernelIsa isa) {
  if (isa == KernelIsa::kAvx512 && !cpu_supports_avx512_variant()) return false;
  isa_slot().store(isa, std::memory_order_relaxed);
  return true;
}

const char* kernel_isa_name(KernelIsa isa) { return isa == KernelIsa::kAvx512 ? "avx512" : "generic"; }

#define PERCEIVER_DEFINE_DISPATCHER(ret, name, params, args)                          \
  ret name params {                                                                   \
    return kernel_isa() == KernelIsa::kAvx512 ? avx512::name args : generic::name args; \
  }
PERCEIVER_DISPATCHED_KERNELS(PERCEIVER_DEFINE_DISPATCHER)

}  // namespace perceiver::cpu
