// Tensor handle, storage and views.
#include "perceiver/core/tensor.h"

#include <cstring>
#include <sstream>

#include "perceiver/core/allocator.h"

namespace perceiver {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s)
    if (__builtin_mul_overflow(n, d, &n)) throw_error("[Tensor] shape ", shape_str(s), " has too many elements");
  return n;
}

Storage::Storage(size_t bytes) : bytes_(bytes) { ptr_ = storage_alloc(bytes); }
Storage::Storage(void* data, size_t bytes, std::shared_ptr<void> owner)
    : ptr_(data), bytes_(bytes), owner_(std::move(owner)) {}
Storage::~Storage() {
  if (owner_) owner_.reset();  // external memory: the owner frees it (or not)
  else storage_free(ptr_, bytes_);
}

void Tensor::require_defined(const char* what) const {
  if (!impl_) throw_error("[Tensor::", what, "] tensor is undefined");
}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  for (int64_t d : shape)
    check(d >= 0, "[Tensor::empty] dimensions must be >= 0, got ", shape_str(shape));
  size_t bytes = 0;
  check(!__builtin_mul_overflow(static_cast<size_t>(shape_numel(shape)), dtype_size(dtype), &bytes) &&
            bytes <= (size_t(1) << 46),
        "[Tensor::empty] shape ", shape_str(shape), " of ", dtype_name(dtype), " is too large to allocate");
  Tensor t;
  t.impl_ = std::make_shared<Impl>();
  t.impl_->shape = shape;
  t.impl_->dtype = dtype;
  t.impl_->storage = std::make_shared<Storage>(bytes);
  return t;
}

Tensor Tensor::from_external(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner) {
  for (int64_t d : shape)
    check(d >= 0, "[Tensor::from_external] dimensions must be >= 0, got ", shape_str(shape));
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  check(data != nullptr || bytes == 0, "[Tensor::from_external] null data for ", shape_str(shape));
  check(reinterpret_cast<uintptr_t>(data) % dtype_size(dtype) == 0, "[Tensor::from_external] data at ", data,
        " is not aligned to its ", dtype_size(dtype), "-byte elements");
  check(owner != nullptr, "[Tensor::from_external] an owner is required (it keeps the memory alive)");
  Tensor t;
  t.impl_ = std::make_shared<Impl>();
  t.impl_->shape = shape;
  t.impl_->dtype = dtype;
  t.impl_->storage = std::make_shared<Storage>(data, bytes, std::move(owner));
  return t;
}

std::shared_ptr<const void> Tensor::storage_owner() const {
  require_defined("storage_owner");
  return impl_->storage;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.raw_data(), 0, t.nbytes());
  return t;
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape);
  t.fill(value);
  return t;
}

Tensor Tensor::from_vector(const Shape& shape, const std::vector<float>& values) {
  check(static_cast<int64_t>(values.size()) == shape_numel(shape), "[Tensor::from_vector] shape ",
        shape_str(shape), " needs ", shape_numel(shape), " values, got ", values.size());
  Tensor t = empty(shape);
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(float));
  return t;
}

Tensor Tensor::from_vector_i32(const Shape& shape, const std::vector<int32_t>& values) {
  check(static_cast<int64_t>(values.size()) == shape_numel(shape), "[Tensor::from_vector_i32] shape ",
        shape_str(shape), " needs ", shape_numel(shape), " values, got ", values.size());
  Tensor t = empty(shape, DType::kI32);
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(int32_t));
  return t;
}

const Shape& Tensor::shape() const {
  require_defined("shape");
  return impl_->shape;
}

int64_t Tensor::dim(int i) const {
  const int r = rank();
  const int j = i < 0 ? i + r : i;
  check(j >= 0 && j < r, "[Tensor::dim] index ", i, " out of range for shape ", shape_str(shape()));
  return impl_->shape[j];
}

int64_t Tensor::numel() const { return shape_numel(shape()); }

DType Tensor::dtype() const {
  require_defined("dtype");
  return impl_->dtype;
}

uint16_t* Tensor::bf16() {
  check(dtype() == DType::kBF16, "[Tensor::bf16] tensor has dtype ", dtype_name(dtype()),
        ", requested bfloat16");
  return static_cast<uint16_t*>(raw_data());
}

const uint16_t* Tensor::bf16() const {
  check(dtype() == DType::kBF16, "[Tensor::bf16] tensor has dtype ", dtype_name(dtype()),
        ", requested bfloat16");
  return reinterpret_cast<const uint16_t*>(static_cast<const char*>(impl_->storage->data()) + impl_->offset_bytes);
}

// A mutable pointer from a const handle: counted as a write.
void* Tensor::raw_data() const {
  require_defined("raw_data");
  impl_->storage->touch();
  return static_cast<char*>(impl_->storage->data()) + impl_->offset_bytes;
}

uint64_t Tensor::write_version() const {
  require_defined("write_version");
  return impl_->storage->version();
}

Tensor Tensor::remembered_copy(DType dtype) const {
  require_defined("remembered_copy");
  Storage& st = *impl_->storage;
  std::lock_guard<std::mutex> lock(st.copy_mu_);
  if (!st.copy_ || st.copy_dtype_ != dtype || st.copy_offset_ != impl_->offset_bytes ||
      st.copy_numel_ != numel() || st.copy_version_ != st.version())
    return Tensor();
  Tensor t;
  t.impl_ = std::make_shared<Impl>();
  t.impl_->storage = st.copy_;
  t.impl_->shape = impl_->shape;
  t.impl_->dtype = dtype;
  return t;
}

void Tensor::forget_copy() const {
  require_defined("forget_copy");
  Storage& st = *impl_->storage;
  std::lock_guard<std::mutex> lock(st.copy_mu_);
  st.copy_.reset();
}

void Tensor::remember_copy(const Tensor& copy, uint64_t at_version) const {
  require_defined("remember_copy");
  check(copy.defined() && copy.shape() == shape() && copy.impl_->offset_bytes == 0 &&
            copy.nbytes() <= copy.impl_->storage->bytes() && copy.impl_->storage != impl_->storage,
        "[remember_copy] expected a dense copy of shape ", shape_str(shape()), " in storage of its own");
  Storage& st = *impl_->storage;
  std::lock_guard<std::mutex> lock(st.copy_mu_);
  st.copy_ = copy.impl_->storage;
  st.copy_dtype_ = copy.dtype();
  st.copy_offset_ = impl_->offset_bytes;
  st.copy_numel_ = numel();
  st.copy_version_ = at_version;
}

const void* Tensor::cdata() const {
  require_defined("data");
  return static_cast<const char*>(impl_->storage->data()) + impl_->offset_bytes;
}

float Tensor::item() const {
  check(numel() == 1, "[Tensor::item] expected one element, got shape ", shape_str(shape()));
  return data<float>()[0];
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  require_defined("reshape");
  Shape s = new_shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      check(infer < 0, "[reshape] at most one -1 allowed, got ", shape_str(new_shape));
      infer = static_cast<int>(i);
    } else {
      check(s[i] >= 0, "[reshape] invalid dimension in ", shape_str(new_shape));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    check(known > 0 && numel() % known == 0, "[reshape] cannot reshape ", shape_str(shape()), " to ",
          shape_str(new_shape));
    s[infer] = numel() / known;
  }
  check(shape_numel(s) == numel(), "[reshape] cannot reshape ", shape_str(shape()), " (", numel(),
        " elements) to ", shape_str(new_shape));
  Tensor t;
  t.impl_ = std::make_shared<Impl>(*impl_);
  t.impl_->shape = s;
  t.impl_->ag.reset();
  return t;
}

Tensor Tensor::slice0(int64_t start, int64_t length) const {
  require_defined("slice0");
  check(rank() >= 1, "[slice0] needs rank >= 1, got ", shape_str(shape()));
  check(start >= 0 && length >= 0 && start + length <= dim(0), "[slice0] rows [", start, ", ",
        start + length, ") out of range for shape ", shape_str(shape()));
  Tensor t;
  t.impl_ = std::make_shared<Impl>(*impl_);
  t.impl_->ag.reset();
  t.impl_->shape[0] = length;
  const int64_t row = dim(0) == 0 ? 0 : numel() / dim(0);
  t.impl_->offset_bytes += static_cast<size_t>(start * row) * dtype_size(dtype());
  return t;
}

Tensor Tensor::clone() const {
  require_defined("clone");
  Tensor t = empty(shape(), dtype());
  if (nbytes()) std::memcpy(t.raw_data(), cdata(), nbytes());
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  require_defined("copy_from");
  check(src.defined() && src.shape() == shape() && src.dtype() == dtype(), "[copy_from] expected ",
        dtype_name(dtype()), shape_str(shape()), ", got ",
        src.defined() ? dtype_name(src.dtype()) + shape_str(src.shape()) : std::string("undefined"));
  if (nbytes()) std::memmove(raw_data(), src.cdata(), nbytes());
}

void Tensor::share_data(const Tensor& src) {
  require_defined("share_data");
  check(src.defined() && src.shape() == shape() && src.dtype() == dtype(), "[share_data] expected ",
        dtype_name(dtype()), shape_str(shape()), ", got ",
        src.defined() ? dtype_name(src.dtype()) + shape_str(src.shape()) : std::string("undefined"));
  impl_->storage = src.impl_->storage;
  impl_->offset_bytes = src.impl_->offset_bytes;
}

void Tensor::assign(const Tensor& src) {
  require_defined("assign");
  check(src.defined() && src.shape() == shape(), "[assign] expected a source of shape ",
        shape_str(shape()), ", got ", src.defined() ? shape_str(src.shape()) : std::string("undefined"));
  impl_->storage = src.impl_->storage;
  impl_->offset_bytes = src.impl_->offset_bytes;
  impl_->shape = src.impl_->shape;
  impl_->dtype = src.impl_->dtype;
}

void Tensor::fill(float value) {
  float* p = data<float>();
  const int64_t n = numel();
  for (int64_t i = 0; i < n; ++i) p[i] = value;
}

std::vector<float> Tensor::to_vector() const {
  const float* p = data<float>();
  return std::vector<float>(p, p + numel());
}

bool Tensor::same_storage(const Tensor& other) const {
  return impl_ && other.impl_ && impl_->storage == other.impl_->storage;
}

bool Tensor::sole_owner() const {
  return impl_ && impl_.use_count() == 1 && impl_->storage.use_count() == 1;
}

long Tensor::storage_holders() const { return impl_ ? impl_->storage.use_count() : 0; }

Tensor Tensor::detach() const {
  require_defined("detach");
  Tensor t;
  t.impl_ = std::make_shared<Impl>(*impl_);
  t.impl_->ag.reset();
  return t;
}

}  // namespace perceiver
