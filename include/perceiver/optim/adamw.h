// AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization"), matching
// torch.optim.AdamW (amsgrad off). Per parameter with gradient g at its step t:
//   p <- p * (1 - lr*wd);  m <- b1*m + (1-b1)*g;  v <- b2*v + (1-b2)*g^2
//   p <- p - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
// wd is OptimizerOptions::weight_decay where the decay mask allows it, else 0.
#pragma once

#include "perceiver/optim/optimizer.h"

namespace perceiver::optim {

class AdamW : public Optimizer {
 public:
  AdamW(std::vector<NamedTensor> params, OptimizerOptions options);
  void step(float lr) override;
  std::string name() const override { return "adamw"; }
};

}  // namespace perceiver::optim
