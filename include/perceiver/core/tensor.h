// Tensor: a handle (shared, like torch.Tensor) to contiguous, 64-byte aligned storage with a
// shape and dtype. Copies share data; clone() copies it. Views (reshape, slice along dim 0)
// share storage. Autograd state lives behind an opaque pointer owned by the autograd layer.
//
// Shape glossary used across the code base: B batch, M inputs, N latents, O output queries,
// C channels, H heads, D head dim (docs/ARCHITECTURE.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "perceiver/core/dtype.h"
#include "perceiver/core/error.h"

namespace perceiver {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[2, 3, 4]"
int64_t shape_numel(const Shape& s);

namespace autograd {
struct AutogradMeta;  // defined in perceiver/autograd/
}

// Owns one block from the caching allocator, a write version, and at most one remembered copy
// of (part of) its data in another dtype (Tensor::remembered_copy).
class Storage {
 public:
  explicit Storage(size_t bytes);
  // Memory the tensor does not own (a NumPy array's buffer): `owner` keeps it alive and is
  // released (its deleter runs) when the last tensor on it goes away.
  Storage(void* data, size_t bytes, std::shared_ptr<void> owner);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  // Advanced by every mutable access to the data (Tensor's non-const accessors, raw_data,
  // copy_from, fill): a copy made at version v is current while version() == v.
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  void touch() { version_.fetch_add(1, std::memory_order_acq_rel); }

 private:
  friend class Tensor;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  std::shared_ptr<void> owner_;  // set for external memory, which is not the allocator's
  std::atomic<uint64_t> version_{0};
  // The remembered copy: the elements at offset_bytes (count numel) in dtype, made at version.
  std::mutex copy_mu_;
  std::shared_ptr<Storage> copy_;
  size_t copy_offset_ = 0;
  int64_t copy_numel_ = 0;
  DType copy_dtype_ = DType::kF32;
  uint64_t copy_version_ = 0;
};

class Tensor {
 public:
  Tensor() = default;  // undefined tensor

  // Factories. empty() leaves contents uninitialised.
  static Tensor empty(const Shape& shape, DType dtype = DType::kF32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::kF32);
  static Tensor full(const Shape& shape, float value);
  static Tensor from_vector(const Shape& shape, const std::vector<float>& values);
  static Tensor from_vector_i32(const Shape& shape, const std::vector<int32_t>& values);
  static Tensor scalar(float value) { return full({}, value); }
  // A tensor on memory it does not own, without copying: `data` holds numel(shape) elements of
  // dtype, dense in row-major order and aligned to the element size; `owner` keeps the memory
  // alive while any tensor (or view) uses it and is released after the last one. Used by the
  // Python module to take NumPy arrays as inputs.
  static Tensor from_external(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner);
  // The object that keeps this tensor's memory alive, such that holding it keeps data valid:
  // the storage itself (outputs handed to NumPy without a copy).
  std::shared_ptr<const void> storage_owner() const;

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int rank() const { return static_cast<int>(shape().size()); }
  int64_t dim(int i) const;  // negative i counts from the end; throws if out of range
  int64_t numel() const;
  DType dtype() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }

  // Typed data access; throws if T does not match dtype().
  template <typename T> T* data();
  template <typename T> const T* data() const;
  float* f32() { return data<float>(); }
  const float* f32() const { return data<float>(); }
  // bfloat16 bits (kernels/cpu/convert.h); throws unless dtype() is kBF16.
  uint16_t* bf16();
  const uint16_t* bf16() const;
  void* raw_data() const;       // mutable: counts as a write (write_version)
  const void* cdata() const;    // read-only
  float item() const;  // value of a one-element float32 tensor

  // Views sharing storage (no autograd: use autograd functions for differentiable views).
  Tensor reshape(const Shape& shape) const;  // one entry may be -1
  Tensor slice0(int64_t start, int64_t length) const;  // rows [start, start+length) of dim 0

  Tensor clone() const;              // deep copy of data (no autograd state)
  void copy_from(const Tensor& src);  // same shape and dtype required
  // Rebinds this tensor (every handle of it) to src's data without copying; same shape and
  // dtype required. Loading uses it so weights are not held twice. Views taken earlier
  // (reshape, slice0, detach) are separate tensors and keep the old data.
  void share_data(const Tensor& src);
  // Rebinds this tensor (every handle of it) to src's data and dtype, without copying; same
  // shape required. Autograd state is kept (a caller changing a parameter's dtype drops its
  // gradient with zero_grad). Used to store a parameter in another dtype in place.
  void assign(const Tensor& src);
  void fill(float value);
  std::vector<float> to_vector() const;
  bool same_storage(const Tensor& other) const;
  // True when this handle is the only one to its tensor and no other tensor (view) shares its
  // storage: then nothing else can see a change to its data.
  bool sole_owner() const;
  // Holders of this tensor's storage: tensor objects (views, detached handles) and a remembered-
  // copy slot (remember_copy) that refers to it.
  long storage_holders() const;

  // Autograd hooks (used by perceiver/autograd; cheap when unused).
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on);
  Tensor grad() const;  // accumulated gradient of a leaf, or undefined
  void set_grad(const Tensor& g);
  void zero_grad();  // drops the gradient
  std::shared_ptr<autograd::AutogradMeta>& autograd_meta() const;
  Tensor detach() const;  // same data, no autograd state
  // Identity of the underlying tensor object (copies of a handle compare equal).
  const void* id() const { return impl_.get(); }

  // A copy of this tensor's data in another dtype (the bf16 rounding of an fp32 weight for
  // mixed-precision products: ops::bf16_copy_of), remembered beside the data. remembered_copy
  // returns it only while nothing has written the data since the version it was made from
  // (write_version() at the time), else an undefined tensor; remember_copy replaces it (copy:
  // same shape, a dense tensor of its own). Thread-safe. The copy is freed with the data.
  // The version counts accesses, not stores: a write through a pointer taken before the copy
  // was made is not seen, so code that writes takes its pointer for that write (as ops do).
  uint64_t write_version() const;
  Tensor remembered_copy(DType dtype) const;
  void remember_copy(const Tensor& copy, uint64_t at_version) const;
  void forget_copy() const;  // frees the remembered copy (if any) now

 private:
  struct Impl {
    std::shared_ptr<Storage> storage;
    size_t offset_bytes = 0;
    Shape shape;
    DType dtype = DType::kF32;
    std::shared_ptr<autograd::AutogradMeta> ag;
  };
  std::shared_ptr<Impl> impl_;
  void require_defined(const char* what) const;
};

// The non-const accessors count as writes (Storage::touch); the const ones do not.
template <typename T> const T* Tensor::data() const {
  require_defined("data");
  check(impl_->dtype == dtype_of<T>(), "[Tensor::data] tensor has dtype ", dtype_name(impl_->dtype),
        ", requested ", dtype_name(dtype_of<T>()));
  return reinterpret_cast<const T*>(static_cast<const char*>(impl_->storage->data()) + impl_->offset_bytes);
}
template <typename T> T* Tensor::data() {
  const T* p = static_cast<const Tensor*>(this)->data<T>();
  impl_->storage->touch();
  return const_cast<T*>(p);
}

}  // namespace perceiver
