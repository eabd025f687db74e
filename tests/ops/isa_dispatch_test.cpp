// Run-time ISA selection of the SIMD kernels (kernels/cpu/isa.h): the PERCEIVER_ISA environment
// variable is honoured (ctest runs this suite once plain and once with PERCEIVER_ISA=generic),
// an unsupported variant is refused, and both variants give the reference results on a tail-
// heavy length for the dispatched kernels.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/layer_norm.h"
#include "kernels/reference/activation.h"
#include "kernels/reference/layer_norm.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using cpu::KernelIsa;

TEST(IsaDispatch, EnvironmentIsHonouredAndUnsupportedIsRefused) {
  const char* env = std::getenv("PERCEIVER_ISA");
  if (env != nullptr && std::strcmp(env, "generic") == 0) {
    EXPECT_EQ(cpu::kernel_isa(), KernelIsa::kGeneric);
  } else if (env == nullptr) {
    EXPECT_EQ(cpu::kernel_isa(),
              cpu::cpu_supports_avx512_variant() ? KernelIsa::kAvx512 : KernelIsa::kGeneric);
  }
  const KernelIsa saved = cpu::kernel_isa();
  EXPECT_TRUE(cpu::set_kernel_isa(KernelIsa::kGeneric));
  EXPECT_EQ(cpu::kernel_isa(), KernelIsa::kGeneric);
  EXPECT_EQ(cpu::set_kernel_isa(KernelIsa::kAvx512), cpu::cpu_supports_avx512_variant());
  EXPECT_STREQ(cpu::kernel_isa_name(KernelIsa::kAvx512), "avx512");
  cpu::set_kernel_isa(saved);
}

TEST(IsaDispatch, BothVariantsMatchTheReference) {
  const KernelIsa saved = cpu::kernel_isa();
  const int64_t rows = 3, cols = 37;  // 2 full AVX-512 vectors + a 5-lane tail per row
  const std::vector<float> x = testing::randn({rows * cols}, 7, 2.0f).to_vector();
  const std::vector<float> w = testing::randn({cols}, 8).to_vector(), b = testing::randn({cols}, 9).to_vector();
  std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end()), bd(b.begin(), b.end());
  std::vector<double> ln_ref(rows * cols), mean_d(rows), rstd_d(rows), gelu_ref(rows * cols);
  ref::layer_norm_forward<double>(ln_ref.data(), mean_d.data(), rstd_d.data(), xd.data(), wd.data(),
                                        bd.data(), rows, cols, 1e-5);
  ref::gelu_forward<double>(gelu_ref.data(), xd.data(), rows * cols);
  for (KernelIsa isa : {KernelIsa::kGeneric, KernelIsa::kAvx512}) {
    if (!cpu::set_kernel_isa(isa)) continue;
    std::vector<float> y(rows * cols), mean(rows), rstd(rows), g(rows * cols);
    cpu::layer_norm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), rows, cols, 1e-5f);
    cpu::gelu_forward(g.data(), x.data(), rows * cols);
    const std::string name = cpu::kernel_isa_name(isa);
    EXPECT_TRUE(testing::all_close(y, ln_ref, testing::f32_tol(cols), name + " layer_norm"));
    EXPECT_TRUE(testing::all_close(g, gelu_ref, testing::f32_tol(1, 16), name + " gelu"));
  }
  cpu::set_kernel_isa(saved);
}

// GELU at huge |x| (x^2 / 2 overflows float): x for large positive, -0 for large negative, never
// NaN, in both variants.
TEST(IsaDispatch, GeluOfHugeInputsIsFinite) {
  const KernelIsa saved = cpu::kernel_isa();
  const std::vector<float> x = {1e30f, -1e30f, 3e38f, -3e38f, 2.7e19f, -2.7e19f, 14.5f, -14.5f};
  for (KernelIsa isa : {KernelIsa::kGeneric, KernelIsa::kAvx512}) {
    if (!cpu::set_kernel_isa(isa)) continue;
    std::vector<float> y(x.size()), dx(x.size());
    const std::vector<float> dy(x.size(), 1.0f);
    cpu::gelu_forward(y.data(), x.data(), static_cast<int64_t>(x.size()));
    cpu::gelu_backward(dx.data(), dy.data(), x.data(), static_cast<int64_t>(x.size()));
    for (size_t i = 0; i < x.size(); ++i) {
      const std::string what = std::string(cpu::kernel_isa_name(isa)) + " x=" + std::to_string(x[i]);
      EXPECT_EQ(y[i], x[i] > 0 ? x[i] : 0.0f) << what;
      EXPECT_EQ(dx[i], x[i] > 0 ? 1.0f : 0.0f) << what;
    }
  }
  cpu::set_kernel_isa(saved);
}

}  // namespace
}  // namespace perceiver
