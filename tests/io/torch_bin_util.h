// Builders for hand-made torch.save archives in the io tests: little-endian packing, CRC-32, a
// STORED zip writer, and pickle snippets for a state dict of tensors (protocol 2 opcodes).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace perceiver::testing {

inline std::string le(uint64_t v, int bytes) {
  std::string s(static_cast<size_t>(bytes), '\0');
  for (int i = 0; i < bytes; ++i) s[static_cast<size_t>(i)] = static_cast<char>(v >> (8 * i));
  return s;
}

inline uint32_t crc32_of(const std::string& data) {
  uint32_t crc = 0xffffffffu;
  for (const char c : data) {
    crc ^= static_cast<uint8_t>(c);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

// A ZIP archive of STORED entries, in order, with correct CRCs and a plain end record.
inline std::string zip_stored(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string out, cd;
  for (const auto& [name, data] : files) {
    const std::string crc = le(crc32_of(data), 4), size = le(data.size(), 4);
    const std::string common = le(0, 2) + le(0, 2) + le(0, 2) + le(0, 2) + crc + size + size +
                               le(name.size(), 2);
    cd += le(0x02014b50, 4) + le(20, 2) + le(20, 2) + common + le(0, 2) + le(0, 2) + le(0, 2) +
          le(0, 2) + le(0, 4) + le(out.size(), 4) + name;
    out += le(0x04034b50, 4) + le(20, 2) + common + le(0, 2) + name + data;
  }
  const size_t cd_offset = out.size();
  out += cd;
  out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(files.size(), 2) + le(files.size(), 2) +
         le(cd.size(), 4) + le(cd_offset, 4) + le(0, 2);
  return out;
}

// A torch.save-shaped archive: archive/data.pkl plus archive/data/<key> storages.
inline std::string torch_zip(const std::string& pickle,
                             const std::vector<std::pair<std::string, std::string>>& storages,
                             const std::string& byteorder = "little") {
  std::vector<std::pair<std::string, std::string>> files = {{"archive/data.pkl", pickle},
                                                           {"archive/byteorder", byteorder}};
  for (const auto& [key, data] : storages) files.emplace_back("archive/data/" + key, data);
  files.emplace_back("archive/version", "3\n");
  return zip_stored(files);
}

namespace pk {

inline std::string proto2() { return std::string("\x80\x02", 2); }
inline std::string str(const std::string& s) { return "X" + le(s.size(), 4) + s; }
inline std::string i32(int64_t v) { return "J" + le(static_cast<uint64_t>(v), 4); }
inline std::string i64(int64_t v) { return "\x8a\x08" + le(static_cast<uint64_t>(v), 8); }
inline std::string ints(const std::vector<int64_t>& v) {
  std::string s = "(";
  for (const int64_t x : v) s += i64(x);
  return s + "t";
}

// _rebuild_tensor_v2((persistent id), offset, size, stride, False, {}) + REDUCE.
inline std::string tensor(const std::string& key, const std::string& storage_class, int64_t numel,
                          int64_t offset, const std::vector<int64_t>& size,
                          const std::vector<int64_t>& stride) {
  return "ctorch._utils\n_rebuild_tensor_v2\n((" + str("storage") + "ctorch\n" + storage_class +
         "\n" + str(key) + str("cpu") + i64(numel) + "tQ" + i64(offset) + ints(size) +
         ints(stride) + "\x89}tR";
}

// {name: value, ...} as EMPTY_DICT MARK ... SETITEMS STOP.
inline std::string state_dict(const std::vector<std::pair<std::string, std::string>>& items) {
  std::string s = proto2() + "}(";
  for (const auto& [name, value] : items) s += str(name) + value;
  return s + "u.";
}

}  // namespace pk

template <typename T> std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

}  // namespace perceiver::testing
