// Fused optimizer update kernels (raw pointers, float32, never throw): AdamW, the two LAMB
// passes, and double-accumulated sums of squares for norms. Big tensors are split into fixed
// blocks spread with parallel_for; reductions add the per-block partials in block order, so
// results do not depend on the thread count.
//
// AdamW (Loshchilov & Hutter 2019; torch.optim.AdamW), t = the parameter's step count:
//   p <- p * (1 - lr*wd)                                   (decoupled weight decay)
//   m <- beta1*m + (1-beta1)*g,   v <- beta2*v + (1-beta2)*g^2
//   p <- p - (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps),     bc1 = 1-beta1^t, bc2 = 1-beta2^t
// LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning", Alg. 2; the Perceiver's
// optimizer), per tensor:
//   m, v as above;  u = (m/bc1) / (sqrt(v/bc2) + eps) + wd*p
//   ratio = ||p|| / ||u||  (1 when either norm is 0);   p <- p - lr*ratio*u
#pragma once

#include <cstdint>

namespace perceiver::cpu {

// p_bf16: nullptr, or n bf16 values that receive bf16(p) after the update in the same pass (the
// mixed-precision copy of the weight, rounded as f32_to_bf16 does).
void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, float bias_correction1,
                  float bias_correction2, uint16_t* p_bf16);

struct LambNorms {
  double param_sq = 0;   // ||p||^2 (before the update)
  double update_sq = 0;  // ||u||^2
};

// LAMB pass 1: advances m and v with g and returns the squared norms of p and of the update
// direction u. p is not modified.
LambNorms lamb_moments(const float* p, const float* g, float* m, float* v, int64_t n, float beta1,
                       float beta2, float eps, float weight_decay, float bias_correction1,
                       float bias_correction2);

// LAMB pass 2: p <- p - step_size * u, with u recomputed from the updated m, v and p exactly as
// in pass 1 (step_size = lr * trust ratio).
void lamb_apply(float* p, const float* m, const float* v, int64_t n, float step_size, float eps,
                float weight_decay, float bias_correction1, float bias_correction2);

// ||p|| / ||u||, or 1 when either norm is 0.
float lamb_trust_ratio(const LambNorms& norms);

// sum_i x_i^2 accumulated in double.
double sum_squares_f64(const float* x, int64_t n);
float sum_squares(const float* x, int64_t n);

// x <- s * x
void scale_inplace(float* x, int64_t n, float s);

// Exponential moving average of parameters: avg = decay * avg + (1 - decay) * p.  avg, p (n)
void ema_update(float* avg, const float* p, int64_t n, float decay);

}  // namespace perceiver::cpu
