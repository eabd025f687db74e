// Loss kernels: cross-entropy via the stable softmax row kernel (log-sum-exp), row losses summed
// in double in row order; MSE via the deterministic blocked sum.
#include "kernels/cpu/loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/reduce.h"
#include "perceiver/core/parallel.h"

namespace perceiver::cpu {
namespace {

constexpr int64_t kGrainElems = 1 << 15;

int64_t kept_rows(const int32_t* labels, int64_t rows) {
  return std::count_if(labels, labels + rows, [](int32_t y) { return y >= 0; });
}

}  // namespace

void cross_entropy_forward(float* loss, float* probs, const float* logits, const int32_t* labels,
                           int64_t rows, int64_t classes, float smoothing) {
  std::vector<double> row_loss(static_cast<size_t>(rows), 0.0);
  const int64_t grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(classes, 1));
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = logits + r * classes;
      const double lse = softmax_row(probs + r * classes, x, classes);
      const int32_t y = labels[r];
      if (y < 0) continue;
      double sum_x = 0;
#pragma omp simd reduction(+ : sum_x)
      for (int64_t k = 0; k < classes; ++k) sum_x += x[k];
      row_loss[r] = (1.0 - smoothing) * (lse - x[y]) + smoothing * (lse - sum_x / classes);
    }
  });
  const int64_t kept = kept_rows(labels, rows);
  double total = 0;
  for (double l : row_loss) total += l;
  *loss = kept > 0 ? static_cast<float>(total / kept) : 0.0f;
}

void cross_entropy_backward(float* dlogits, float dloss, const float* probs, const int32_t* labels,
                            int64_t rows, int64_t classes, float smoothing) {
  const int64_t kept = kept_rows(labels, rows);
  const float g = kept > 0 ? dloss / static_cast<float>(kept) : 0.0f;
  const float off = smoothing / static_cast<float>(classes);
  const int64_t grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(classes, 1));
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* d = dlogits + r * classes;
      const float* p = probs + r * classes;
      const int32_t y = labels[r];
      if (y < 0) {
        std::fill(d, d + classes, 0.0f);
        continue;
      }
      for (int64_t k = 0; k < classes; ++k) d[k] = g * (p[k] - off);
      d[y] -= g * (1.0f - smoothing);
    }
  });
}

void mse_forward(float* loss, const float* pred, const float* target, int64_t n) {
  const double s = blocked_sum(n, [pred, target](int64_t i0, int64_t i1) {
    double acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = i0; i < i1; ++i) {
      const double d = static_cast<double>(pred[i]) - target[i];
      acc += d * d;
    }
    return acc;
  });
  *loss = n > 0 ? static_cast<float>(s / n) : 0.0f;
}

void mse_backward(float* dpred, float dloss, const float* pred, const float* target, int64_t n) {
  const float g = n > 0 ? 2.0f * dloss / static_cast<float>(n) : 0.0f;
  parallel_for(n, 1 << 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) dpred[i] = g * (pred[i] - target[i]);
  });
}

namespace {
bool flow_known(float u, float v) {
  return std::isfinite(u) && std::isfinite(v) && std::fabs(u) <= 1e9f && std::fabs(v) <= 1e9f;
}
int64_t known_flow_rows(const float* target, int64_t rows) {
  int64_t n = 0;
  for (int64_t r = 0; r < rows; ++r) n += flow_known(target[2 * r], target[2 * r + 1]);
  return n;
}
}  // namespace

void end_point_error_forward(float* loss, int64_t* known, const float* pred, const float* target, int64_t rows) {
  const double s = blocked_sum(rows, [&](int64_t r0, int64_t r1) {
    double acc = 0;
    for (int64_t r = r0; r < r1; ++r) {
      if (!flow_known(target[2 * r], target[2 * r + 1])) continue;
      const double du = static_cast<double>(pred[2 * r]) - target[2 * r];
      const double dv = static_cast<double>(pred[2 * r + 1]) - target[2 * r + 1];
      acc += std::sqrt(du * du + dv * dv);
    }
    return acc;
  });
  const int64_t n = known_flow_rows(target, rows);
  *known = n;
  *loss = n > 0 ? static_cast<float>(s / static_cast<double>(n)) : 0.0f;
}

void end_point_error_backward(float* dpred, float dloss, const float* pred, const float* target, int64_t rows) {
  const int64_t known = known_flow_rows(target, rows);
  const float g = known > 0 ? dloss / static_cast<float>(known) : 0.0f;
  parallel_for(rows, 1 << 15, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* d = dpred + 2 * r;
      d[0] = d[1] = 0.0f;
      if (!flow_known(target[2 * r], target[2 * r + 1])) continue;
      const float du = pred[2 * r] - target[2 * r], dv = pred[2 * r + 1] - target[2 * r + 1];
      const float n = std::sqrt(du * du + dv * dv);
      if (n == 0.0f) continue;  // the norm has no gradient at 0: take 0 (a subgradient)
      d[0] = g * du / n;
      d[1] = g * dv / n;
    }
  });
}

}  // namespace perceiver::cpu
