// LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning", Algorithm 2), the
// optimizer of the Perceiver paper (2103.03206). Per parameter tensor with gradient g at step t:
//   m <- b1*m + (1-b1)*g;  v <- b2*v + (1-b2)*g^2
//   u = (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + wd*p
//   p <- p - lr * (||p|| / ||u||) * u      (trust ratio taken as 1 when either norm is 0)
// wd follows the decay mask; the trust ratio applies to every tensor (as optax.lamb).
#pragma once

#include "perceiver/optim/optimizer.h"

namespace perceiver::optim {

class Lamb : public Optimizer {
 public:
  Lamb(std::vector<NamedTensor> params, OptimizerOptions options);
  void step(float lr) override;
  std::string name() const override { return "lamb"; }
};

}  // namespace perceiver::optim
