// load_pytorch_bin: locates data.pkl in the torch.save zip archive, runs the restricted
// unpickler, then copies each (possibly strided, possibly shared) storage view into a contiguous
// float32 / int32 tensor. convert_to_safetensors writes the result with save_safetensors.
#include "perceiver/io/torch_pickle.h"

#include <cstdio>
#include <cstring>
#include <limits>
#include <map>

#include "perceiver/core/error.h"
#include "perceiver/io/zip_reader.h"
#include "restricted_unpickler.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "perceiver.cpp torch checkpoint loading assumes a little-endian host"
#endif

namespace perceiver::io {
namespace {

using pickle::StorageType;
using pickle::TensorRef;

constexpr uint64_t kMaxPickleBytes = 256ull << 20;

template <typename T> T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Calls fn(dst_index, src_index) for every element of `t` in row-major order.
template <typename Fn> void for_each_element(const TensorRef& t, int64_t numel, Fn&& fn) {
  const int rank = static_cast<int>(t.size.size());
  std::vector<int64_t> idx(static_cast<size_t>(rank), 0);
  int64_t src = t.offset;
  for (int64_t n = 0; n < numel; ++n) {
    fn(n, src);
    for (int d = rank - 1; d >= 0; --d) {
      if (++idx[d] < t.size[d]) {
        src += t.stride[d];
        break;
      }
      src -= (t.size[d] - 1) * t.stride[d];
      idx[d] = 0;
    }
  }
}

bool is_contiguous(const TensorRef& t) {
  int64_t expected = 1;
  for (size_t d = t.size.size(); d-- > 0;) {
    if (t.size[d] != 1 && t.stride[d] != expected) return false;
    expected *= t.size[d];
  }
  return true;
}

class TensorBuilder {
 public:
  TensorBuilder(const std::string& path, const std::string& name) : path_(path), name_(name) {}

  // Copies the view `t` of the raw storage bytes into a new contiguous tensor.
  Tensor build(const TensorRef& t, const std::string& bytes) const {
    const auto& info = pickle::storage_type_info(t.storage.type);
    Tensor out = Tensor::empty(t.size, info.is_float ? DType::kF32 : DType::kI32);
    const auto* base = reinterpret_cast<const uint8_t*>(bytes.data());
    const int64_t numel = out.numel();
    if ((t.storage.type == StorageType::kFloat || t.storage.type == StorageType::kInt) &&
        is_contiguous(t)) {
      std::memcpy(out.raw_data(), base + t.offset * 4, static_cast<size_t>(numel) * 4);
      return out;
    }
    switch (t.storage.type) {
      case StorageType::kFloat: copy<float>(t, base, out.f32(), [](float v) { return v; }); break;
      case StorageType::kHalf: copy<uint16_t>(t, base, out.f32(), f16_to_f32); break;
      case StorageType::kBFloat16: copy<uint16_t>(t, base, out.f32(), bf16_to_f32); break;
      case StorageType::kDouble:
        copy<double>(t, base, out.f32(), [](double v) { return static_cast<float>(v); });
        break;
      case StorageType::kLong: copy_int<int64_t>(t, base, out); break;
      case StorageType::kInt: copy_int<int32_t>(t, base, out); break;
      case StorageType::kShort: copy_int<int16_t>(t, base, out); break;
      case StorageType::kChar: copy_int<int8_t>(t, base, out); break;
      case StorageType::kByte: copy_int<uint8_t>(t, base, out); break;
      case StorageType::kBool:
        copy<uint8_t>(t, base, out.data<int32_t>(), [&](uint8_t v) {
          check(v <= 1, "[torch_pickle] ", path_, ": tensor \"", name_,
                "\" (BoolStorage) holds byte value ", int(v), ", expected 0 or 1");
          return static_cast<int32_t>(v);
        });
        break;
    }
    return out;
  }

 private:
  std::string path_, name_;

  template <typename Src, typename Dst, typename Conv>
  void copy(const TensorRef& t, const uint8_t* base, Dst* dst, Conv conv) const {
    for_each_element(t, shape_numel(t.size), [&](int64_t n, int64_t src) {
      dst[n] = conv(load_le<Src>(base + src * static_cast<int64_t>(sizeof(Src))));
    });
  }

  template <typename Src> void copy_int(const TensorRef& t, const uint8_t* base, Tensor& out) const {
    copy<Src>(t, base, out.data<int32_t>(), [&](Src v) {
      const auto wide = static_cast<int64_t>(v);
      check(wide >= std::numeric_limits<int32_t>::min() &&
                wide <= std::numeric_limits<int32_t>::max(),
            "[torch_pickle] ", path_, ": tensor \"", name_, "\" (",
            pickle::storage_type_info(t.storage.type).name, ") holds ", wide,
            ", which does not fit in int32");
      return static_cast<int32_t>(wide);
    });
  }
};

// The archive's single "<prefix>/data.pkl" entry; returns "<prefix>/".
std::string find_prefix(const ZipReader& zip) {
  std::string prefix;
  int found = 0;
  for (const auto& e : zip.entries()) {
    const std::string suffix = "/data.pkl";
    if (e.name.size() <= suffix.size() ||
        e.name.compare(e.name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string p = e.name.substr(0, e.name.size() - suffix.size() + 1);
    if (p.find('/') != p.size() - 1) continue;
    prefix = p;
    ++found;
  }
  check(found == 1, "[torch_pickle] ", zip.path(), ": expected exactly one <archive>/data.pkl "
        "entry (a torch.save zip archive), found ", found);
  return prefix;
}

void check_not_legacy(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return;  // ZipReader reports the open error
  uint8_t head[2] = {};
  const size_t n = std::fread(head, 1, 2, f);
  std::fclose(f);
  check(!(n == 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5), "[torch_pickle] ", path,
        ": legacy (pre-1.6, non-zip) torch.save format is not supported, expected a zip "
        "archive; re-save it with torch.save(obj, path) from PyTorch >= 1.6");
}

}  // namespace

SafetensorsFile load_pytorch_bin(const std::string& path) {
  check_not_legacy(path);
  const ZipReader zip(path);
  const std::string prefix = find_prefix(zip);
  if (const ZipEntry* bo = zip.find(prefix + "byteorder")) {
    const std::string order = zip.read(*bo);
    check(order == "little", "[torch_pickle] ", path, ": byteorder is \"", order.substr(0, 16),
          "\", expected \"little\" (big-endian checkpoints are not supported)");
  }
  const ZipEntry& pkl = *zip.find(prefix + "data.pkl");
  check(pkl.uncompressed_size <= kMaxPickleBytes, "[torch_pickle] ", path, ": ", pkl.name, " is ",
        pkl.uncompressed_size, " bytes, more than the limit of ", kMaxPickleBytes);
  const auto refs = pickle::unpickle_state_dict(zip.read(pkl), path + ": " + pkl.name);

  // Every reference to a storage must agree on its type and size; count uses to free early.
  std::map<std::string, std::pair<const pickle::StorageRef*, int>> uses;
  for (const auto& [name, t] : refs) {
    auto [it, fresh] = uses.try_emplace(t.storage.key, &t.storage, 0);
    const pickle::StorageRef& first = *it->second.first;
    check(fresh || (first.type == t.storage.type && first.numel == t.storage.numel),
          "[torch_pickle] ", path, ": storage \"", t.storage.key, "\" is referenced as ",
          pickle::storage_type_info(first.type).name, " of ", first.numel, " elements and as ",
          pickle::storage_type_info(t.storage.type).name, " of ", t.storage.numel,
          " elements (tensor \"", name, "\")");
    ++it->second.second;
  }

  SafetensorsFile out;
  std::map<std::string, std::string> loaded;  // storage key -> raw bytes, while still needed
  for (const auto& [name, t] : refs) {
    check(!out.tensors.count(name), "[torch_pickle] ", path, ": duplicate tensor name \"", name,
          "\"");
    auto cached = loaded.find(t.storage.key);
    if (cached == loaded.end()) {
      const std::string entry = prefix + "data/" + t.storage.key;
      const ZipEntry* e = zip.find(entry);
      check(e != nullptr, "[torch_pickle] ", path, ": tensor \"", name, "\" needs storage entry \"",
            entry, "\", which is missing from the archive");
      const uint64_t need =
          static_cast<uint64_t>(t.storage.numel) * pickle::storage_type_info(t.storage.type).size;
      check(e->uncompressed_size == need, "[torch_pickle] ", path, ": storage \"", entry, "\" (",
            pickle::storage_type_info(t.storage.type).name, " of ", t.storage.numel,
            " elements) expected ", need, " bytes, got ", e->uncompressed_size);
      cached = loaded.emplace(t.storage.key, zip.read(*e)).first;
    }
    out.tensors.emplace(name, TensorBuilder(path, name).build(t, cached->second));
    out.order.push_back(name);
    if (--uses.at(t.storage.key).second == 0) loaded.erase(cached);
  }
  return out;
}

void convert_to_safetensors(const std::string& in_bin, const std::string& out_safetensors) {
  const SafetensorsFile f = load_pytorch_bin(in_bin);
  save_safetensors(out_safetensors, ordered_tensors(f), {{"format", "pt"}});
}

}  // namespace perceiver::io
