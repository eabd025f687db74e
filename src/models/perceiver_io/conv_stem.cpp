// HF Conv2DDownsample (vision-perceiver-conv stem, spec 5.6): Conv2dSamePadding 7x7/2 without
// bias, BatchNorm2d, ReLU, MaxPool2d 3x3/2.
#include <cmath>

#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/functions_conv.h"
#include "perceiver/models/perceiver_io/preprocessors.h"

namespace perceiver::models::perceiver_io {

namespace {
constexpr int kKernel = 7;
constexpr float kBnEps = 1e-5f;      // torch.nn.BatchNorm2d defaults
constexpr float kBnMomentum = 0.1f;
}  // namespace

ConvDownsample::ConvDownsample(int64_t in_channels, int64_t out_channels, bool use_batchnorm, Rng& rng) {
  const float std = 1.0f / std::sqrt(static_cast<float>(in_channels * kKernel * kKernel));
  conv_weight_ = register_parameter("conv.weight",
                                    nn::init_truncated_normal({out_channels, in_channels, kKernel, kKernel}, std, rng));
  if (use_batchnorm)
    batchnorm_ = register_module("batchnorm", std::make_shared<nn::BatchNorm2d>(out_channels, kBnEps, kBnMomentum));
}

Tensor ConvDownsample::forward(const Tensor& x) const {
  const int64_t cin = conv_weight_.dim(1);
  check(x.defined() && x.rank() == 4 && x.dim(1) == cin, "[conv_downsample] inputs: expected (B, ", cin,
        ", H, W), got ", x.defined() ? shape_str(x.shape()) : "undefined");
  // out = self.conv(ZeroPad2d(k // 2)(inputs)): symmetric padding 3 for the 7x7 kernel
  Tensor y = ag::conv2d(x, conv_weight_, Tensor(), 2, 2, kKernel / 2, kKernel / 2);  // (B, C, H/2, W/2)
  // out = self.batchnorm(out): running statistics in eval mode; batch statistics (and a
  // running-buffer update, num_batches_tracked += 1) in training mode
  if (batchnorm_) y = batchnorm_->forward(y);
  // out = self.max_pool(self.relu(out)): 3x3, stride 2, no padding, floor
  return ag::max_pool2d(ag::relu(y), 3, 3, 2, 2, 0, 0);
}

}  // namespace perceiver::models::perceiver_io
