// Tensor's autograd accessors. They live in the autograd layer (not core) because only here is
// AutogradMeta a complete type; core's Tensor holds it through an opaque pointer.
#include "perceiver/autograd/meta.h"
#include "perceiver/core/tensor.h"

namespace perceiver {

std::shared_ptr<autograd::AutogradMeta>& Tensor::autograd_meta() const {
  require_defined("autograd_meta");
  return impl_->ag;
}

bool Tensor::requires_grad() const { return impl_ && impl_->ag && impl_->ag->requires_grad; }

Tensor& Tensor::set_requires_grad(bool on) {
  require_defined("set_requires_grad");
  if (!impl_->ag) impl_->ag = std::make_shared<autograd::AutogradMeta>();
  impl_->ag->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  if (!impl_ || !impl_->ag) return Tensor();
  return impl_->ag->grad;
}

void Tensor::set_grad(const Tensor& g) {
  require_defined("set_grad");
  if (!impl_->ag) impl_->ag = std::make_shared<autograd::AutogradMeta>();
  impl_->ag->grad = g;
}

void Tensor::zero_grad() {
  if (impl_ && impl_->ag) impl_->ag->grad = Tensor();
}

}  // namespace perceiver
