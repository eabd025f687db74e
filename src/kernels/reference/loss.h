// Reference losses (label-smoothed cross-entropy as torch.nn.functional.cross_entropy with
// ignored labels < 0, MSE, and the optical-flow end-point error): plain scalar templates, the oracle for kernels/cpu/loss.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace perceiver::ref {

// Returns mean over kept rows of (1 - s)(-log p[y]) + s mean_k(-log p[k]) (0 if none kept);
// probs (R, K) = softmax(logits (R, K)); labels (R).
template <typename T>
T cross_entropy_forward(T* probs, const T* logits, const int32_t* labels, int64_t rows,
                        int64_t classes, T smoothing) {
  T total = 0;
  int64_t kept = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = logits + r * classes;
    const T mx = *std::max_element(x, x + classes);
    T s = 0;
    for (int64_t k = 0; k < classes; ++k) s += std::exp(x[k] - mx);
    const T lse = mx + std::log(s);
    for (int64_t k = 0; k < classes; ++k) probs[r * classes + k] = std::exp(x[k] - lse);
    if (labels[r] < 0) continue;
    T smooth = 0;
    for (int64_t k = 0; k < classes; ++k) smooth += (lse - x[k]) / static_cast<T>(classes);
    total += (T(1) - smoothing) * (lse - x[labels[r]]) + smoothing * smooth;
    ++kept;
  }
  return kept > 0 ? total / static_cast<T>(kept) : T(0);
}

// dlogits (R, K) = dloss / kept (p - (1 - s) onehot - s / K); 0 on ignored rows
template <typename T>
void cross_entropy_backward(T* dlogits, T dloss, const T* probs, const int32_t* labels,
                            int64_t rows, int64_t classes, T smoothing) {
  int64_t kept = 0;
  for (int64_t r = 0; r < rows; ++r) kept += labels[r] >= 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < classes; ++k) {
      const T target = (T(1) - smoothing) * (k == labels[r]) + smoothing / static_cast<T>(classes);
      dlogits[r * classes + k] =
          labels[r] < 0 ? T(0) : dloss / static_cast<T>(kept) * (probs[r * classes + k] - target);
    }
}

template <typename T>
T mse_forward(const T* pred, const T* target, int64_t n) {
  T s = 0;
  for (int64_t i = 0; i < n; ++i) s += (pred[i] - target[i]) * (pred[i] - target[i]);
  return s / static_cast<T>(n);
}

template <typename T>
void mse_backward(T* dpred, T dloss, const T* pred, const T* target, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dpred[i] = dloss * T(2) * (pred[i] - target[i]) / static_cast<T>(n);
}

// A flow vector is known when both components are finite with magnitude <= 1e9 (the
// Middlebury .flo convention writes 1e10 for unknown flow).
template <typename T>
bool flow_known(T u, T v) {
  return std::isfinite(static_cast<double>(u)) && std::isfinite(static_cast<double>(v)) &&
         std::fabs(static_cast<double>(u)) <= 1e9 && std::fabs(static_cast<double>(v)) <= 1e9;
}

// Mean over the rows r with a known target of ||pred[r] - target[r]||_2 (rows of 2); 0 if none.
template <typename T>
T end_point_error_forward(const T* pred, const T* target, int64_t rows) {
  T s = 0;
  int64_t known = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (!flow_known(target[2 * r], target[2 * r + 1])) continue;
    const T du = pred[2 * r] - target[2 * r], dv = pred[2 * r + 1] - target[2 * r + 1];
    s += std::sqrt(du * du + dv * dv);
    ++known;
  }
  return known ? s / static_cast<T>(known) : T(0);
}

// dpred[r] = dloss (pred[r] - target[r]) / (||pred[r] - target[r]|| known); 0 for unknown rows
// and where the error is exactly 0.
template <typename T>
void end_point_error_backward(T* dpred, T dloss, const T* pred, const T* target, int64_t rows) {
  int64_t known = 0;
  for (int64_t r = 0; r < rows; ++r) known += flow_known(target[2 * r], target[2 * r + 1]);
  for (int64_t r = 0; r < rows; ++r) {
    dpred[2 * r] = dpred[2 * r + 1] = T(0);
    if (!flow_known(target[2 * r], target[2 * r + 1])) continue;
    const T du = pred[2 * r] - target[2 * r], dv = pred[2 * r + 1] - target[2 * r + 1];
    const T n = std::sqrt(du * du + dv * dv);
    if (n == T(0)) continue;
    dpred[2 * r] = dloss * du / (n * static_cast<T>(known));
    dpred[2 * r + 1] = dloss * dv / (n * static_cast<T>(known));
  }
}

}  // namespace perceiver::ref
