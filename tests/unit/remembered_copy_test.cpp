// Write versions and remembered copies (core/tensor.h) and ops::bf16_copy_of: a copy is returned
// only while no write has reached the data since it was made, whichever handle or view wrote.
#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "perceiver/core/tensor.h"
#include "perceiver/ops/convert.h"

namespace perceiver {
namespace {

Tensor ramp(int64_t n, float step) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = 0.3f + step * static_cast<float>(i);
  return Tensor::from_vector({n}, v);
}

std::vector<uint16_t> bits(const Tensor& t) {
  const uint16_t* p = t.bf16();
  return std::vector<uint16_t>(p, p + t.numel());
}

TEST(RememberedCopy, ReadsKeepTheVersionWritesAdvanceIt) {
  Tensor w = ramp(40, 0.01f);
  const uint64_t v0 = w.write_version();
  const Tensor& cw = w;
  (void)cw.f32();
  (void)cw.data<float>();
  (void)cw.cdata();
  (void)w.to_vector();
  (void)w.clone();
  EXPECT_EQ(w.write_version(), v0) << "a read counted as a write";
  const std::vector<std::pair<const char*, void (*)(Tensor&)>> writes = {
      {"f32()", [](Tensor& t) { t.f32()[0] = 1.0f; }},
      {"data<float>()", [](Tensor& t) { t.data<float>()[1] = 2.0f; }},
      {"raw_data()", [](Tensor& t) { static_cast<float*>(t.raw_data())[2] = 3.0f; }},
      {"fill", [](Tensor& t) { t.fill(0.5f); }},
      {"copy_from", [](Tensor& t) { t.copy_from(ramp(40, 0.02f)); }},
      {"a view's write", [](Tensor& t) { t.slice0(10, 5).f32()[0] = 4.0f; }},
      {"a reshaped handle's write", [](Tensor& t) { t.reshape({5, 8}).f32()[3] = 5.0f; }},
  };
  for (const auto& [what, write] : writes) {
    const uint64_t before = w.write_version();
    write(w);
    EXPECT_GT(w.write_version(), before) << what;
  }
}

TEST(RememberedCopy, Bf16CopyIsReusedUntilAnyWrite) {
  Tensor w = ramp(1000, 0.37f);
  const Tensor c1 = ops::bf16_copy_of(w);
  EXPECT_EQ(bits(c1), bits(ops::to_bf16(w)));
  EXPECT_EQ(ops::bf16_copy_of(w).cdata(), c1.cdata()) << "a second use rounded again";
  EXPECT_EQ(ops::bf16_copy_of(w.detach()).cdata(), c1.cdata()) << "another handle of the same data";
  // every kind of write makes the copy stale; the next use rounds the new values
  const std::vector<std::pair<const char*, void (*)(Tensor&)>> writes = {
      {"f32()", [](Tensor& t) { t.f32()[7] += 1.0f; }},
      {"fill", [](Tensor& t) { t.fill(-2.5f); }},
      {"copy_from", [](Tensor& t) { t.copy_from(ramp(1000, -0.11f)); }},
      {"a view's write", [](Tensor& t) { t.slice0(999, 1).f32()[0] = 77.0f; }},
  };
  for (const auto& [what, write] : writes) {
    write(w);
    EXPECT_FALSE(w.remembered_copy(DType::kBF16).defined()) << what;
    const Tensor c = ops::bf16_copy_of(w);
    EXPECT_EQ(bits(c), bits(ops::to_bf16(w))) << what;
  }
}

TEST(RememberedCopy, KeyedByDtypeOffsetAndShape) {
  Tensor w = ramp(64, 0.5f);
  Tensor c = ops::bf16_copy_of(w);
  EXPECT_TRUE(w.remembered_copy(DType::kBF16).defined());
  EXPECT_FALSE(w.remembered_copy(DType::kF32).defined());
  EXPECT_FALSE(w.slice0(0, 32).remembered_copy(DType::kBF16).defined()) << "a part is not the whole";
  EXPECT_FALSE(w.slice0(32, 32).remembered_copy(DType::kBF16).defined());
  const Tensor r = w.reshape({8, 8}).remembered_copy(DType::kBF16);
  ASSERT_TRUE(r.defined()) << "the same elements under another shape";
  EXPECT_EQ(r.shape(), (Shape{8, 8}));
  EXPECT_EQ(r.cdata(), c.cdata());
  // a slice gets a copy of its own elements (the slot holds one copy per storage)
  const Tensor part = w.slice0(32, 32);
  EXPECT_EQ(bits(ops::bf16_copy_of(part)), bits(ops::to_bf16(part)));
}

TEST(RememberedCopy, ForgetFreesTheCopy) {
  Tensor w = ramp(64, 0.25f);
  const Tensor c = ops::bf16_copy_of(w);
  EXPECT_EQ(c.storage_holders(), 2);  // the slot and c
  w.forget_copy();
  EXPECT_FALSE(w.remembered_copy(DType::kBF16).defined());
  EXPECT_EQ(c.storage_holders(), 1);
}

TEST(RememberedCopy, ACopyMadeBeforeAWriteIsNotRemembered) {
  // the version is read before the rounding: a write between the two leaves the copy stale
  Tensor w = ramp(16, 1.0f);
  const uint64_t v = w.write_version();
  Tensor early = ops::to_bf16(w);
  w.f32()[0] = 100.0f;
  w.remember_copy(early, v);
  EXPECT_FALSE(w.remembered_copy(DType::kBF16).defined());
}

TEST(RememberedCopy, RejectsCopiesOfAnotherShapeOrSharedStorage) {
  Tensor w = ramp(16, 1.0f);
  EXPECT_THROW(w.remember_copy(Tensor::empty({8}, DType::kBF16), w.write_version()), Error);
  EXPECT_THROW(w.remember_copy(w.reshape({16}), w.write_version()), Error);
  EXPECT_THROW(w.remember_copy(Tensor::empty({32}, DType::kBF16).slice0(16, 16), w.write_version()), Error);
  EXPECT_THROW(ops::bf16_copy_of(ops::to_bf16(w)), Error) << "w must be float32";
}

}  // namespace
}  // namespace perceiver
