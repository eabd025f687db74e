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

ConvDownsample::ConvDownsample(int64_t in_channels, int64_t out_channels, bool use_batchnorm, Rng& rng)
    : use_batchnorm_(use_batchnorm) {
  const float std = 1.0f / std::sqrt(static_cast<float>(in_channels * kKernel * kKernel));
  conv_weight_ = register_parameter("conv.weight",
                                    nn::init_truncated_normal({out_channels, in_channels, kKernel, kKernel}, std, rng));
  if (use_batchnorm_) {
    bn_weight_ = register_parameter("batchnorm.weight", Tensor::full({out_channels}, 1.0f));
    bn_bias_ = register_parameter("batchnorm.bias", Tensor::zeros({out_channels}));
    running_mean_ = register_buffer("batchnorm.running_mean", Tensor::zeros({out_channels}));
    running_var_ = register_buffer("batchnorm.running_var", Tensor::full({out_channels}, 1.0f));
    num_batches_tracked_ = register_buffer("batchnorm.num_batches_tracked", Tensor::from_vector_i32({}, {0}));
  }
}

Tensor ConvDownsample::forward(const Tensor& x) const {
  const int64_t cin = conv_weight_.dim(1);
  check(x.defined() && x.rank() == 4 && x.dim(1) == cin, "[conv_downsample] inputs: expected (B, ", cin,
        ", H, W), got ", x.defined() ? shape_str(x.shape()) : "undefined");
  // out = self.conv(ZeroPad2d(k // 2)(inputs)): symmetric padding 3 for the 7x7 kernel
  Tensor y = ag::conv2d(x, conv_weight_, Tensor(), 2, 2, kKernel / 2, kKernel / 2);  // (B, C, H/2, W/2)
  if (use_batchnorm_) {
    // out = self.batchnorm(out): running statistics in eval mode; batch statistics (and a
    // running-buffer update, num_batches_tracked += 1) in training mode
    y = ag::batch_norm(y, bn_weight_, bn_bias_, running_mean_, running_var_, kBnEps, kBnMomentum, is_training());
    if (is_training()) num_batches_tracked_.data<int32_t>()[0] += 1;
  }
  // out = self.max_pool(self.relu(out)): 3x3, stride 2, no padding, floor
  return ag::max_pool2d(ag::relu(y), 3, 3, 2, 2, 0, 0);
}

}  // namespace perceiver::models::perceiver_io
