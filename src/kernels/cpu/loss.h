// Fast CPU losses: label-smoothed cross-entropy over softmax probabilities, mean squared error
// and the flow end-point error; 'mean' reduction (PyTorch default). Never throw.
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

// Optical-flow end-point error over rows of (u, v): a row is known when both target components
// are finite with |.| <= 1e9 (.flo's 1e10 marks unknown flow).
// *loss = mean over known rows of ||pred[r] - target[r]||_2 (0 when none); *known = their count.
// pred, target (rows, 2)
void end_point_error_forward(float* loss, int64_t* known, const float* pred, const float* target, int64_t rows);
// dpred[r] = dloss (pred[r] - target[r]) / (||pred[r] - target[r]|| known) on known rows with a
// non-zero error, else 0.  dpred, pred, target (rows, 2)
void end_point_error_backward(float* dpred, float dloss, const float* pred, const float* target, int64_t rows);

}  // namespace perceiver::cpu
