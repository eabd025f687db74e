// Fast CPU losses: label-smoothed cross-entropy over softmax probabilities, and mean squared
// error; both 'mean' reduction (PyTorch default). Never throw.
#pragma once

#include <cstdint>

namespace perceiver::cpu {

// Per kept row r (labels[r] >= 0; labels < 0 are ignored, like HF's -100):
//   l_r = (1 - s) (lse_r - x[r, y_r]) + s (lse_r - mean_k x[r, k]),  lse = log sum_k exp x[r, k]
// *loss = sum_r l_r / kept (0 when no row is kept); probs = softmax(logits) for every row.
// loss (1); probs, logits (R, K), e.g. (B, K); labels (R). Labels must be < K.
void cross_entropy_forward(float* loss, float* probs, const float* logits, const int32_t* labels,
                           int64_t rows, int64_t classes, float smoothing);
// dlogits[r, k] = dloss / kept * (p[r, k] - (1 - s) [k == y_r] - s / K); 0 for ignored rows.
// dlogits, probs (R, K); labels (R).
void cross_entropy_backward(float* dlogits, float dloss, const float* probs, const int32_t* labels,
                            int64_t rows, int64_t classes, float smoothing);

// *loss = mean_i (pred_i - target_i)^2.  pred, target (n)
void mse_forward(float* loss, const float* pred, const float* target, int64_t n);
// dpred = dloss * 2 (pred - target) / n.  dpred, pred, target (n)
void mse_backward(float* dpred, float dloss, const float* pred, const float* target, int64_t n);

}  // namespace perceiver::cpu
