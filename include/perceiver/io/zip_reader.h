// Read-only ZIP archive access for PyTorch checkpoints (torch.save "zipfile serialization"). The
// central directory is untrusted: the end record (zip64 included), every entry's sizes, offsets,
// name and local header are validated against the file before any data is read. Entries may be
// STORED or DEFLATE-compressed (zlib); reads are CRC-32 checked. Multi-disk and encrypted
// archives are rejected. Errors read "[zip] <path>: <what>, expected ..., got ...".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace perceiver::io {

// One file in the archive, as described by a validated central directory record.
struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 = stored, 8 = deflate
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t local_header_offset = 0;
};

class ZipReader {
 public:
  // Opens `path` and parses and validates its central directory.
  explicit ZipReader(const std::string& path);
  ~ZipReader();
  ZipReader(ZipReader&&) noexcept;
  ZipReader& operator=(ZipReader&&) noexcept;
  ZipReader(const ZipReader&) = delete;
  ZipReader& operator=(const ZipReader&) = delete;

  const std::string& path() const;
  const std::vector<ZipEntry>& entries() const;  // central directory order, names unique
  const ZipEntry* find(const std::string& name) const;  // nullptr if absent

  // The entry's whole uncompressed contents (CRC-checked).
  std::string read(const ZipEntry& entry) const;
  std::string read(const std::string& name) const;  // Error if there is no such entry

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// True if the file starts with a ZIP signature ("PK\3\4" local header or "PK\5\6" empty archive).
// Never throws; false for unreadable files.
bool has_zip_magic(const std::string& path);

}  // namespace perceiver::io
