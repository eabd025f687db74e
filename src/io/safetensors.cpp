// safetensors reader (untrusted-header validation, dtype conversion) and atomic writer.
#include "perceiver/io/safetensors.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "perceiver/core/error.h"
#include "perceiver/io/atomic_file.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "perceiver.cpp safetensors I/O assumes a little-endian host"
#endif

namespace perceiver::io {
namespace {

using ojson = nlohmann::ordered_json;

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // 100 MB, as in the reference implementation
constexpr const char* kMetadataKey = "__metadata__";

enum class Kind { kFloat, kInt, kUnsupported };

struct DTypeInfo {
  const char* name;
  size_t size;
  Kind kind;
};

constexpr DTypeInfo kDTypes[] = {
    {"F64", 8, Kind::kFloat},  {"F32", 4, Kind::kFloat},   {"F16", 2, Kind::kFloat},
    {"BF16", 2, Kind::kFloat}, {"I64", 8, Kind::kInt},     {"I32", 4, Kind::kInt},
    {"I16", 2, Kind::kInt},    {"I8", 1, Kind::kInt},      {"U64", 8, Kind::kInt},
    {"U32", 4, Kind::kInt},    {"U16", 2, Kind::kInt},     {"U8", 1, Kind::kInt},
    {"BOOL", 1, Kind::kInt},   {"F8_E4M3", 1, Kind::kUnsupported},
    {"F8_E5M2", 1, Kind::kUnsupported}, {"C64", 8, Kind::kUnsupported},
};

const DTypeInfo* find_dtype(const std::string& s) {
  for (const auto& d : kDTypes)
    if (s == d.name) return &d;
  return nullptr;
}

std::string known_dtypes() {
  std::string out;
  for (const auto& d : kDTypes) out += (out.empty() ? "" : ", ") + std::string(d.name);
  return out;
}

// A short, bounded rendering of a JSON value for error messages.
void describe(const ojson& j, std::string& out, size_t budget) {
  if (out.size() > budget) return;
  if (j.is_array() || j.is_object()) {
    out += j.is_array() ? '[' : '{';
    bool first = true;
    for (const auto& [key, v] : j.items()) {
      if (out.size() > budget) break;
      if (!first) out += ',';
      first = false;
      if (j.is_object()) out += "\"" + key.substr(0, budget) + "\":";
      describe(v, out, budget);
    }
    out += j.is_array() ? ']' : '}';
    return;
  }
  try {
    out += j.dump();
  } catch (const std::exception&) {
    out += "<unprintable>";
  }
}

std::string short_json(const ojson& j) {
  constexpr size_t kMax = 80;
  std::string s;
  describe(j, s, kMax);
  return s.size() > kMax ? s.substr(0, kMax - 3) + "..." : s;
}

// The header's bracket nesting depth (outside strings). Checked before parsing so that no deeply
// nested value ever reaches recursive code (a shape of 10^6 nested arrays would overflow the stack).
size_t nesting_depth(const std::string& text) {
  size_t depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return max_depth;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

struct OpenFile {
  FilePtr f;
  uint64_t size = 0;
};

OpenFile open_for_read(const std::string& path) {
  OpenFile of;
  of.f.reset(std::fopen(path.c_str(), "rb"));
  if (!of.f) throw_error("[safetensors] ", path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(::fileno(of.f.get()), &st) != 0)
    throw_error("[safetensors] ", path, ": cannot stat: ", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw_error("[safetensors] ", path, ": not a regular file");
  of.size = static_cast<uint64_t>(st.st_size);
  return of;
}

void read_at(std::FILE* f, uint64_t offset, void* dst, size_t n, const std::string& path,
             const std::string& what) {
  if (n == 0) return;
  if (::fseeko(f, static_cast<off_t>(offset), SEEK_SET) != 0)
    throw_error("[safetensors] ", path, ": cannot seek to ", what, " at byte ", offset, ": ",
                std::strerror(errno));
  const size_t got = std::fread(dst, 1, n, f);
  if (got != n)
    throw_error("[safetensors] ", path, ": ", what, " is truncated: expected ", n,
                " bytes at offset ", offset, ", got ", got);
}

uint64_t get_u64(const ojson& v, const std::string& path, const std::string& what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  throw_error("[safetensors] ", path, ": ", what, ": expected a non-negative integer, got ",
              short_json(v));
}

ojson parse_header(const std::string& text, const std::string& path) {
  std::string duplicate;
  std::set<std::string> seen;
  ojson::parser_callback_t cb = [&](int depth, ojson::parse_event_t ev, ojson& parsed) {
    if (depth == 1 && ev == ojson::parse_event_t::key && parsed.is_string()) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!seen.insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  constexpr size_t kMaxDepth = 16;  // a valid header nests 3 deep
  const size_t depth = nesting_depth(text);
  check(depth <= kMaxDepth, "[safetensors] ", path, ": header nests JSON ", depth,
        " levels deep, more than the limit of ", kMaxDepth);
  ojson j;
  try {
    j = ojson::parse(text, cb);
  } catch (const nlohmann::json::exception& e) {
    throw_error("[safetensors] ", path, ": header is not valid JSON: ", e.what());
  }
  check(j.is_object(), "[safetensors] ", path, ": header must be a JSON object, got ",
        j.type_name());
  check(duplicate.empty(), "[safetensors] ", path, ": duplicate tensor name \"", duplicate,
        "\" in header");
  return j;
}

SafetensorsEntry parse_entry(const std::string& name, const ojson& v, uint64_t data_size,
                             const std::string& path) {
  const std::string where = "tensor \"" + name + "\"";
  if (!(v.is_object()))
    throw_error("[safetensors] ", path, ": ", where, ": expected an object, got ",
                short_json(v));
  for (const auto& [key, _] : v.items())
    check(key == "dtype" || key == "shape" || key == "data_offsets", "[safetensors] ", path, ": ",
          where, ": unexpected key \"", key, "\" (expected dtype, shape, data_offsets)");
  if (!(v.contains("dtype") && v.contains("shape") && v.contains("data_offsets")))
    throw_error("[safetensors] ", path, ": ", where, ": needs dtype, shape and data_offsets, got ",
                short_json(v));
  SafetensorsEntry e;
  e.name = name;
  const ojson& dt = v["dtype"];
  if (!(dt.is_string()))
    throw_error("[safetensors] ", path, ": ", where, ": dtype must be a string, got ",
                short_json(dt));
  e.dtype = dt.get<std::string>();
  const DTypeInfo* info = find_dtype(e.dtype);
  check(info != nullptr, "[safetensors] ", path, ": ", where, ": unknown dtype \"", e.dtype,
        "\" (expected one of ", known_dtypes(), ")");

  const ojson& sh = v["shape"];
  if (!(sh.is_array()))
    throw_error("[safetensors] ", path, ": ", where, ": shape must be an array, got ",
                short_json(sh));
  check(sh.size() <= 64, "[safetensors] ", path, ": ", where, ": rank ", sh.size(),
        " exceeds the limit of 64");
  uint64_t numel = 1;
  for (const auto& d : sh) {
    if (!(d.is_number_unsigned()))
      throw_error("[safetensors] ", path, ": ", where,
                  ": shape entries must be non-negative integers, got ", short_json(sh));
    const uint64_t u = d.get<uint64_t>();
    if (!(u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) &&
              !__builtin_mul_overflow(numel, u, &numel)))
      throw_error("[safetensors] ", path, ": ", where, ": shape ", short_json(sh),
                  " overflows the element count");
    e.shape.push_back(static_cast<int64_t>(u));
  }
  uint64_t nbytes = 0;
  if (!(!__builtin_mul_overflow(numel, static_cast<uint64_t>(info->size), &nbytes) &&
            numel <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())))
    throw_error("[safetensors] ", path, ": ", where, ": shape ", short_json(sh),
                " overflows the byte count");

  const ojson& off = v["data_offsets"];
  if (!(off.is_array() && off.size() == 2))
    throw_error("[safetensors] ", path, ": ", where,
                ": data_offsets must be [begin, end], got ", short_json(off));
  e.begin = get_u64(off[0], path, where + " data_offsets[0]");
  e.end = get_u64(off[1], path, where + " data_offsets[1]");
  check(e.begin <= e.end, "[safetensors] ", path, ": ", where, ": data_offsets [", e.begin, ", ",
        e.end, "] have begin > end");
  check(e.end <= data_size, "[safetensors] ", path, ": ", where, ": data_offsets [", e.begin, ", ",
        e.end, "] run past the end of the data buffer (", data_size, " bytes)");
  check(e.end - e.begin == nbytes, "[safetensors] ", path, ": ", where, ": ", e.dtype, " shape ",
        shape_str(e.shape), " needs ", nbytes, " bytes, data_offsets [", e.begin, ", ", e.end,
        "] hold ", e.end - e.begin);
  return e;
}

void check_no_overlap(const std::vector<SafetensorsEntry>& entries, const std::string& path) {
  std::vector<const SafetensorsEntry*> sorted;
  for (const auto& e : entries)
    if (e.end > e.begin) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    const auto* a = sorted[i - 1];
    const auto* b = sorted[i];
    check(b->begin >= a->end, "[safetensors] ", path, ": tensors \"", a->name, "\" [", a->begin,
          ", ", a->end, ") and \"", b->name, "\" [", b->begin, ", ", b->end, ") overlap");
  }
}

SafetensorsHeader read_header(std::FILE* f, uint64_t file_size, const std::string& path) {
  check(file_size >= 8, "[safetensors] ", path, ": file is ", file_size,
        " bytes, too small for the 8-byte header length");
  uint8_t len_bytes[8];
  read_at(f, 0, len_bytes, 8, path, "header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
  check(n <= kMaxHeaderBytes, "[safetensors] ", path, ": header length ", n,
        " exceeds the limit of ", kMaxHeaderBytes, " bytes");
  check(n >= 2, "[safetensors] ", path, ": header length ", n, " is too small for a JSON object");
  check(file_size - 8 >= n, "[safetensors] ", path, ": header is truncated: header length ", n,
        " needs at least ", 8 + n, " bytes, file has ", file_size);
  std::string text(static_cast<size_t>(n), '\0');
  read_at(f, 8, text.data(), text.size(), path, "header");

  const ojson j = parse_header(text, path);
  SafetensorsHeader h;
  h.data_start = 8 + n;
  h.data_size = file_size - h.data_start;
  for (const auto& [key, v] : j.items()) {
    if (key == kMetadataKey) {
      if (!(v.is_object()))
        throw_error("[safetensors] ", path, ": __metadata__ must be an object, got ",
                    short_json(v));
      for (const auto& [mk, mv] : v.items()) {
        if (!(mv.is_string()))
          throw_error("[safetensors] ", path, ": __metadata__ value for \"", mk,
                      "\" must be a string, got ", short_json(mv));
        h.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    h.entries.push_back(parse_entry(key, v, h.data_size, path));
  }
  check_no_overlap(h.entries, path);
  return h;
}

int32_t to_i32_checked(int64_t v, const SafetensorsEntry& e, int64_t index,
                       const std::string& path) {
  check(v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max(),
        "[safetensors] ", path, ": tensor \"", e.name, "\" (", e.dtype, ") element ", index,
        " = ", v, " does not fit in int32");
  return static_cast<int32_t>(v);
}

template <typename T> T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Converts `count` elements starting at element `first` from raw bytes into the output tensor.
void convert_chunk(const uint8_t* src, int64_t first, int64_t count, const SafetensorsEntry& e,
                   Tensor& out, const std::string& path) {
  const std::string& d = e.dtype;
  if (out.dtype() == DType::kF32) {
    float* dst = out.f32() + first;
    for (int64_t i = 0; i < count; ++i) {
      if (d == "F16") dst[i] = f16_to_f32(load_le<uint16_t>(src + 2 * i));
      else if (d == "BF16") dst[i] = bf16_to_f32(load_le<uint16_t>(src + 2 * i));
      else dst[i] = static_cast<float>(load_le<double>(src + 8 * i));  // F64
    }
    return;
  }
  int32_t* dst = out.data<int32_t>() + first;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t idx = first + i;
    int64_t v = 0;
    if (d == "I64") v = load_le<int64_t>(src + 8 * i);
    else if (d == "I16") v = load_le<int16_t>(src + 2 * i);
    else if (d == "I8") v = load_le<int8_t>(src + i);
    else if (d == "U8") v = src[i];
    else if (d == "U16") v = load_le<uint16_t>(src + 2 * i);
    else if (d == "U32") v = load_le<uint32_t>(src + 4 * i);
    else if (d == "U64") {
      const uint64_t u = load_le<uint64_t>(src + 8 * i);
      check(u <= static_cast<uint64_t>(std::numeric_limits<int32_t>::max()), "[safetensors] ", path,
            ": tensor \"", e.name, "\" (U64) element ", idx, " = ", u, " does not fit in int32");
      v = static_cast<int64_t>(u);
    } else {  // BOOL
      check(src[i] <= 1, "[safetensors] ", path, ": tensor \"", e.name, "\" (BOOL) element ", idx,
            " has byte value ", int(src[i]), ", expected 0 or 1");
      v = src[i];
    }
    dst[i] = to_i32_checked(v, e, idx, path);
  }
}

Tensor load_entry(std::FILE* f, const SafetensorsHeader& h, const SafetensorsEntry& e,
                  const DTypeInfo& info, const std::string& path) {
  const std::string what = "data of tensor \"" + e.name + "\"";
  const uint64_t offset = h.data_start + e.begin;
  const DType out_dtype = info.kind == Kind::kFloat ? DType::kF32 : DType::kI32;
  Tensor out = Tensor::empty(e.shape, out_dtype);
  if ((e.dtype == "F32" || e.dtype == "I32")) {
    read_at(f, offset, out.raw_data(), out.nbytes(), path, what);
    return out;
  }
  const int64_t numel = out.numel();
  const int64_t chunk = std::max<int64_t>(1, (1 << 20) / static_cast<int64_t>(info.size));
  std::vector<uint8_t> buf(static_cast<size_t>(std::min(numel, chunk)) * info.size);
  for (int64_t first = 0; first < numel; first += chunk) {
    const int64_t count = std::min(chunk, numel - first);
    read_at(f, offset + static_cast<uint64_t>(first) * info.size, buf.data(),
            static_cast<size_t>(count) * info.size, path, what);
    convert_chunk(buf.data(), first, count, e, out, path);
  }
  return out;
}

}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  const DTypeInfo* d = find_dtype(dtype);
  return d ? d->size : 0;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / NaN (payload kept)
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;  // +-0
  } else {  // subnormal: normalise
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    bits = sign | ((112u - static_cast<uint32_t>(e)) << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

float bf16_to_f32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

SafetensorsHeader read_safetensors_header(const std::string& path) {
  OpenFile of = open_for_read(path);
  return read_header(of.f.get(), of.size, path);
}

namespace {

SafetensorsFile load_from(std::FILE* f, uint64_t size, const std::string& path, const SafetensorsLoadOptions& opts) {
  const SafetensorsHeader h = read_header(f, size, path);
  SafetensorsFile out;
  out.metadata = h.metadata;
  for (const auto& e : h.entries) {
    const DTypeInfo& info = *find_dtype(e.dtype);
    if (info.kind == Kind::kUnsupported) {
      check(opts.skip_unsupported, "[safetensors] ", path, ": tensor \"", e.name, "\" has dtype ",
            e.dtype, " which cannot be converted (supported: F32, F16, BF16, F64 -> float32; "
            "I64, I32, I16, I8, U64, U32, U16, U8, BOOL -> int32)");
      out.skipped.push_back(e.name);
      continue;
    }
    out.tensors.emplace(e.name, load_entry(f, h, e, info, path));
    out.order.push_back(e.name);
  }
  return out;
}

}  // namespace

SafetensorsFile load_safetensors(const std::string& path, const SafetensorsLoadOptions& opts) {
  OpenFile of = open_for_read(path);
  return load_from(of.f.get(), of.size, path, opts);
}

SafetensorsFile load_safetensors_bytes(const std::string& bytes, const std::string& what,
                                       const SafetensorsLoadOptions& opts) {
  check(bytes.size() >= 8, "[safetensors] ", what, ": expected at least the 8-byte header length, got ",
        bytes.size(), " bytes");
  FilePtr f(::fmemopen(const_cast<char*>(bytes.data()), bytes.size(), "rb"));
  if (!f) throw_error("[safetensors] ", what, ": cannot read from memory: ", std::strerror(errno));
  return load_from(f.get(), bytes.size(), what, opts);
}

std::vector<std::pair<std::string, Tensor>> ordered_tensors(const SafetensorsFile& file) {
  std::vector<std::pair<std::string, Tensor>> out;
  out.reserve(file.order.size());
  for (const auto& name : file.order) out.emplace_back(name, file.tensors.at(name));
  return out;
}

std::vector<uint8_t> load_safetensors_raw(const std::string& path, const std::string& name) {
  OpenFile of = open_for_read(path);
  const SafetensorsHeader h = read_header(of.f.get(), of.size, path);
  for (const auto& e : h.entries) {
    if (e.name != name) continue;
    std::vector<uint8_t> bytes(static_cast<size_t>(e.end - e.begin));
    read_at(of.f.get(), h.data_start + e.begin, bytes.data(), bytes.size(), path,
            "data of tensor \"" + name + "\"");
    return bytes;
  }
  throw_error("[safetensors] ", path, ": no tensor named \"", name, "\"");
}

namespace {

// The 8-byte length and the JSON header of a file holding `tensors` in order.
std::string header_bytes(const std::vector<std::pair<std::string, Tensor>>& tensors,
                         const std::map<std::string, std::string>& metadata, const std::string& path) {
  ojson header = ojson::object();
  if (!metadata.empty()) {
    ojson meta = ojson::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header[kMetadataKey] = std::move(meta);
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    check(!name.empty(), "[safetensors] ", path, ": tensor names must be non-empty");
    check(name != kMetadataKey, "[safetensors] ", path, ": \"", kMetadataKey,
          "\" is reserved and cannot name a tensor");
    check(names.insert(name).second, "[safetensors] ", path, ": duplicate tensor name \"", name,
          "\"");
    check(t.defined(), "[safetensors] ", path, ": tensor \"", name, "\" is undefined");
    const char* dt = nullptr;
    switch (t.dtype()) {
      case DType::kF32: dt = "F32"; break;
      case DType::kI32: dt = "I32"; break;
      case DType::kBF16: dt = "BF16"; break;
      case DType::kF16: dt = "F16"; break;
    }
    PERCEIVER_CHECK(dt != nullptr);
    const uint64_t nbytes = t.nbytes();
    header[name] = {{"dtype", dt}, {"shape", t.shape()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw_error("[safetensors] ", path, ": cannot encode header (names and metadata must be "
                "valid UTF-8): ", e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // data buffer starts 8-byte aligned
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(static_cast<uint8_t>(text.size() >> (8 * i)));
  return out + text;
}

}  // namespace

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string head = header_bytes(tensors, metadata, path);
  write_file_atomic(path, [&](std::FILE* f) {
    write_all(f, head.data(), head.size(), "safetensors", path);
    for (const auto& [name, t] : tensors) write_all(f, t.cdata(), t.nbytes(), "safetensors", path);
  });
}

std::string safetensors_bytes(const std::vector<std::pair<std::string, Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  std::string out = header_bytes(tensors, metadata, "(in memory)");
  for (const auto& [name, t] : tensors) out.append(static_cast<const char*>(t.cdata()), t.nbytes());
  return out;
}

}  // namespace perceiver::io
