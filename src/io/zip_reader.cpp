// ZIP reader: end-of-central-directory search (zip64 aware), validated central directory and
// local headers, STORED/DEFLATE extraction with size and CRC-32 checks.
#include "perceiver/io/zip_reader.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>

#include "perceiver/core/error.h"

namespace perceiver::io {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kEndSize = 22, kZip64EndSize = 56, kZip64LocatorSize = 20;
constexpr size_t kCentralSize = 46, kLocalSize = 30;
constexpr uint64_t kMaxEntries = 1u << 20;
constexpr uint64_t kMaxDeflateRatio = 1032;  // the best ratio DEFLATE can reach

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t le64(const uint8_t* p) { return le32(p) | (static_cast<uint64_t>(le32(p + 4)) << 32); }

}  // namespace

struct ZipReader::Impl {
  std::string path;
  FilePtr file;
  uint64_t size = 0;
  std::vector<ZipEntry> entries;
  std::map<std::string, size_t> index;

  void read_at(uint64_t offset, void* dst, size_t n, const char* what) const {
    if (n == 0) return;
    check(offset <= size && n <= size - offset, "[zip] ", path, ": ", what, " at byte ", offset,
          " (", n, " bytes) runs past the end of the file (", size, " bytes)");
    if (::fseeko(file.get(), static_cast<off_t>(offset), SEEK_SET) != 0)
      throw_error("[zip] ", path, ": cannot seek to ", what, " at byte ", offset, ": ",
                  std::strerror(errno));
    const size_t got = std::fread(dst, 1, n, file.get());
    check(got == n, "[zip] ", path, ": ", what, " is truncated: expected ", n, " bytes at offset ",
          offset, ", got ", got);
  }

  void open() {
    file.reset(std::fopen(path.c_str(), "rb"));
    if (!file) throw_error("[zip] ", path, ": cannot open: ", std::strerror(errno));
    struct stat st {};
    if (::fstat(::fileno(file.get()), &st) != 0)
      throw_error("[zip] ", path, ": cannot stat: ", std::strerror(errno));
    check(S_ISREG(st.st_mode), "[zip] ", path, ": not a regular file");
    size = static_cast<uint64_t>(st.st_size);
  }

  // Offset of the end-of-central-directory record: the last signature whose comment fits.
  uint64_t find_end_record() const {
    check(size >= kEndSize, "[zip] ", path, ": file is ", size,
          " bytes, too small for a ZIP end-of-central-directory record (", kEndSize, " bytes)");
    const uint64_t tail = std::min<uint64_t>(size, kEndSize + 0xffff);
    std::vector<uint8_t> buf(static_cast<size_t>(tail));
    read_at(size - tail, buf.data(), buf.size(), "end of central directory search window");
    for (size_t i = buf.size() - kEndSize + 1; i-- > 0;) {
      if (le32(&buf[i]) != kEndSig) continue;
      if (i + kEndSize + le16(&buf[i + 20]) <= buf.size()) return size - tail + i;
    }
    throw_error("[zip] ", path, ": not a ZIP archive: no end-of-central-directory record in the "
                "last ", tail, " bytes");
  }

  struct Directory {
    uint64_t count = 0, offset = 0, bytes = 0;
  };

  Directory read_end_record(uint64_t end_pos) const {
    uint8_t e[kEndSize];
    read_at(end_pos, e, kEndSize, "end of central directory");
    const uint16_t disk = le16(e + 4), cd_disk = le16(e + 6);
    const uint16_t disk_count = le16(e + 8);
    Directory d{le16(e + 10), le32(e + 16), le32(e + 12)};
    const bool zip64 = disk_count == 0xffff || d.count == 0xffff || d.offset == 0xffffffffu ||
                       d.bytes == 0xffffffffu;
    if (!zip64) {
      check(disk == 0 && cd_disk == 0 && disk_count == d.count, "[zip] ", path,
            ": multi-disk archives are not supported (disk ", disk, ", directory disk ", cd_disk,
            ", entries ", disk_count, " here of ", d.count, ")");
      check(d.offset <= end_pos && d.bytes <= end_pos - d.offset, "[zip] ", path,
            ": central directory [", d.offset, ", +", d.bytes,
            ") runs past the end-of-central-directory record at byte ", end_pos);
      return d;
    }
    check(end_pos >= kZip64LocatorSize, "[zip] ", path,
          ": zip64 fields present but no room for the zip64 locator before byte ", end_pos);
    uint8_t loc[kZip64LocatorSize];
    read_at(end_pos - kZip64LocatorSize, loc, kZip64LocatorSize, "zip64 end locator");
    check(le32(loc) == kZip64LocatorSig, "[zip] ", path,
          ": zip64 fields present but the zip64 end locator signature is missing");
    check(le32(loc + 4) == 0 && le32(loc + 16) == 1, "[zip] ", path,
          ": multi-disk zip64 archives are not supported");
    const uint64_t rec = le64(loc + 8);
    check(rec <= end_pos - kZip64LocatorSize && end_pos - kZip64LocatorSize - rec >= kZip64EndSize,
          "[zip] ", path, ": zip64 end record offset ", rec, " is outside [0, ",
          end_pos - kZip64LocatorSize, ")");
    uint8_t z[kZip64EndSize];
    read_at(rec, z, kZip64EndSize, "zip64 end record");
    check(le32(z) == kZip64EndSig, "[zip] ", path, ": bad zip64 end record signature at byte ", rec);
    check(le32(z + 16) == 0 && le32(z + 20) == 0 && le64(z + 24) == le64(z + 32), "[zip] ", path,
          ": multi-disk zip64 archives are not supported");
    d = Directory{le64(z + 32), le64(z + 48), le64(z + 40)};
    check(d.offset <= rec && d.bytes <= rec - d.offset, "[zip] ", path, ": central directory [",
          d.offset, ", +", d.bytes, ") runs past the zip64 end record at byte ", rec);
    return d;
  }

  // Replaces 0xffff... placeholders with the values from a zip64 extended-information field.
  void apply_zip64_extra(const uint8_t* extra, size_t n, ZipEntry& e, bool need_usize,
                         bool need_csize, bool need_offset) const {
    size_t pos = 0;
    while (pos + 4 <= n) {
      const uint16_t id = le16(extra + pos), len = le16(extra + pos + 2);
      check(pos + 4 + len <= n, "[zip] ", path, ": entry \"", e.name,
            "\": extra field runs past its declared length");
      if (id == 0x0001) {
        const uint8_t* p = extra + pos + 4;
        size_t need = 8 * (need_usize + need_csize + need_offset);
        check(len >= need, "[zip] ", path, ": entry \"", e.name, "\": zip64 extra field holds ",
              len, " bytes, expected at least ", need);
        if (need_usize) e.uncompressed_size = le64(p), p += 8;
        if (need_csize) e.compressed_size = le64(p), p += 8;
        if (need_offset) e.local_header_offset = le64(p);
        return;
      }
      pos += 4 + len;
    }
    check(!(need_usize || need_csize || need_offset), "[zip] ", path, ": entry \"", e.name,
          "\": sizes are 0xffffffff but there is no zip64 extra field");
  }

  void read_directory() {
    const uint64_t end_pos = find_end_record();
    const Directory d = read_end_record(end_pos);
    check(d.count <= kMaxEntries, "[zip] ", path, ": ", d.count,
          " entries exceed the limit of ", kMaxEntries);
    check(d.count * kCentralSize <= d.bytes, "[zip] ", path, ": central directory of ", d.bytes,
          " bytes cannot hold ", d.count, " entries (", kCentralSize, " bytes each at least)");
    std::vector<uint8_t> cd(static_cast<size_t>(d.bytes));
    read_at(d.offset, cd.data(), cd.size(), "central directory");
    size_t pos = 0;
    for (uint64_t i = 0; i < d.count; ++i) {
      check(pos + kCentralSize <= cd.size(), "[zip] ", path, ": central directory record ", i,
            " runs past the directory end");
      const uint8_t* r = &cd[pos];
      check(le32(r) == kCentralSig, "[zip] ", path, ": corrupt central directory: record ", i,
            " at byte ", d.offset + pos, " has signature 0x", std::hex, le32(r),
            ", expected 0x02014b50");
      const uint16_t flags = le16(r + 8);
      const size_t name_len = le16(r + 28), extra_len = le16(r + 30), comment_len = le16(r + 32);
      check(pos + kCentralSize + name_len + extra_len + comment_len <= cd.size(), "[zip] ", path,
            ": central directory record ", i, " runs past the directory end");
      ZipEntry e;
      e.name.assign(reinterpret_cast<const char*>(r + kCentralSize), name_len);
      e.method = le16(r + 10);
      e.crc32 = le32(r + 16);
      e.compressed_size = le32(r + 20);
      e.uncompressed_size = le32(r + 24);
      e.local_header_offset = le32(r + 42);
      check((flags & 0x41) == 0, "[zip] ", path, ": entry \"", e.name,
            "\" is encrypted (flags 0x", std::hex, flags, "), which is not supported");
      check(le16(r + 34) == 0 || le16(r + 34) == 0xffff, "[zip] ", path, ": entry \"", e.name,
            "\" starts on disk ", le16(r + 34), "; multi-disk archives are not supported");
      apply_zip64_extra(r + kCentralSize + name_len, extra_len, e,
                        e.uncompressed_size == 0xffffffffu, e.compressed_size == 0xffffffffu,
                        e.local_header_offset == 0xffffffffu);
      validate_entry(e, d.offset);
      check(index.emplace(e.name, entries.size()).second, "[zip] ", path,
            ": duplicate entry name \"", e.name, "\"");
      entries.push_back(std::move(e));
      pos += kCentralSize + name_len + extra_len + comment_len;
    }
  }

  void validate_entry(const ZipEntry& e, uint64_t directory_offset) const {
    check(!e.name.empty(), "[zip] ", path, ": an entry has an empty name");
    check(e.method == 0 || e.method == 8, "[zip] ", path, ": entry \"", e.name,
          "\" uses compression method ", e.method, ", expected 0 (stored) or 8 (deflate)");
    if (e.method == 0)
      check(e.compressed_size == e.uncompressed_size, "[zip] ", path, ": stored entry \"", e.name,
            "\" has compressed size ", e.compressed_size, " != uncompressed size ",
            e.uncompressed_size);
    else
      check(e.uncompressed_size / kMaxDeflateRatio <= e.compressed_size + 1, "[zip] ", path,
            ": entry \"", e.name, "\" claims ", e.uncompressed_size, " bytes from ",
            e.compressed_size, " compressed bytes, beyond DEFLATE's maximum ratio");
    check(e.local_header_offset < directory_offset &&
              e.compressed_size <= directory_offset - e.local_header_offset,
          "[zip] ", path, ": entry \"", e.name, "\" [", e.local_header_offset, ", +",
          e.compressed_size, ") runs past the central directory at byte ", directory_offset);
  }

  // File offset of an entry's data, after checking its local header against the directory.
  uint64_t data_offset(const ZipEntry& e) const {
    uint8_t h[kLocalSize];
    read_at(e.local_header_offset, h, kLocalSize, "local header");
    check(le32(h) == kLocalSig, "[zip] ", path, ": entry \"", e.name, "\": bad local header "
          "signature at byte ", e.local_header_offset);
    check(le16(h + 8) == e.method, "[zip] ", path, ": entry \"", e.name, "\": local header method ",
          le16(h + 8), " differs from the central directory's ", e.method);
    const uint16_t name_len = le16(h + 26), extra_len = le16(h + 28);
    std::string name(name_len, '\0');
    read_at(e.local_header_offset + kLocalSize, name.data(), name_len, "local header name");
    check(name == e.name, "[zip] ", path, ": local header at byte ", e.local_header_offset,
          " names \"", name, "\", the central directory says \"", e.name, "\"");
    const uint64_t start = e.local_header_offset + kLocalSize + name_len + extra_len;
    check(start <= size && e.compressed_size <= size - start, "[zip] ", path, ": entry \"", e.name,
          "\" data [", start, ", +", e.compressed_size, ") runs past the end of the file (", size,
          " bytes)");
    return start;
  }

  std::string inflate_raw(const std::string& in, const ZipEntry& e) const {
    std::string out(static_cast<size_t>(e.uncompressed_size), '\0');
    z_stream zs{};
    check(inflateInit2(&zs, -MAX_WBITS) == Z_OK, "[zip] ", path, ": zlib inflateInit2 failed");
    constexpr size_t kChunk = 1u << 30;  // zlib counts in 32-bit uInt
    size_t in_pos = 0, out_pos = 0;
    uint8_t spill = 0;  // catches output beyond the declared size
    bool overflow = false;
    int rc = Z_OK;
    for (;;) {
      const uInt in_chunk = static_cast<uInt>(std::min(in.size() - in_pos, kChunk));
      const bool to_spill = out_pos == out.size();
      const uInt out_chunk = to_spill ? 1 : static_cast<uInt>(std::min(out.size() - out_pos, kChunk));
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + in_pos));
      zs.avail_in = in_chunk;
      zs.next_out = to_spill ? &spill : reinterpret_cast<Bytef*>(out.data() + out_pos);
      zs.avail_out = out_chunk;
      rc = inflate(&zs, Z_NO_FLUSH);
      const size_t consumed = in_chunk - zs.avail_in, produced = out_chunk - zs.avail_out;
      in_pos += consumed;
      if (to_spill && produced > 0) {
        overflow = true;
        break;
      }
      if (!to_spill) out_pos += produced;
      if (rc != Z_OK) break;
      if (consumed == 0 && produced == 0) {  // no progress: the input ran out mid-stream
        rc = Z_BUF_ERROR;
        break;
      }
    }
    const std::string msg = zs.msg ? zs.msg : "";
    inflateEnd(&zs);
    check(!overflow, "[zip] ", path, ": entry \"", e.name, "\": DEFLATE data inflates to more "
          "than the declared ", e.uncompressed_size, " bytes");
    check(rc == Z_STREAM_END && out_pos == out.size(), "[zip] ", path, ": entry \"", e.name,
          "\": DEFLATE data is corrupt or truncated: expected ", e.uncompressed_size,
          " bytes, got ", out_pos, " (zlib code ", rc, msg.empty() ? "" : ": ", msg, ")");
    return out;
  }
};

ZipReader::ZipReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->open();
  impl_->read_directory();
}
ZipReader::~ZipReader() = default;
ZipReader::ZipReader(ZipReader&&) noexcept = default;
ZipReader& ZipReader::operator=(ZipReader&&) noexcept = default;

const std::string& ZipReader::path() const { return impl_->path; }
const std::vector<ZipEntry>& ZipReader::entries() const { return impl_->entries; }

const ZipEntry* ZipReader::find(const std::string& name) const {
  const auto it = impl_->index.find(name);
  return it == impl_->index.end() ? nullptr : &impl_->entries[it->second];
}

std::string ZipReader::read(const ZipEntry& e) const {
  const uint64_t start = impl_->data_offset(e);
  check(e.compressed_size <= std::numeric_limits<size_t>::max() / 2 &&
            e.uncompressed_size <= std::numeric_limits<size_t>::max() / 2,
        "[zip] ", impl_->path, ": entry \"", e.name, "\" is too large for this machine");
  std::string raw(static_cast<size_t>(e.compressed_size), '\0');
  impl_->read_at(start, raw.data(), raw.size(), "entry data");
  std::string out = e.method == 0 ? std::move(raw) : impl_->inflate_raw(raw, e);
  uLong crc = ::crc32(0L, Z_NULL, 0);
  for (size_t pos = 0; pos < out.size();) {
    const uInt n = static_cast<uInt>(std::min<size_t>(out.size() - pos, 1u << 30));
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(out.data() + pos), n);
    pos += n;
  }
  check(static_cast<uint32_t>(crc) == e.crc32, "[zip] ", impl_->path, ": entry \"", e.name,
        "\" fails its CRC-32 check: expected 0x", std::hex, e.crc32, ", got 0x",
        static_cast<uint32_t>(crc));
  return out;
}

std::string ZipReader::read(const std::string& name) const {
  const ZipEntry* e = find(name);
  check(e != nullptr, "[zip] ", impl_->path, ": no entry named \"", name, "\"");
  return read(*e);
}

bool has_zip_magic(const std::string& path) {
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) return false;
  uint8_t m[4] = {};
  if (std::fread(m, 1, 4, f.get()) != 4) return false;
  return m[0] == 'P' && m[1] == 'K' && ((m[2] == 3 && m[3] == 4) || (m[2] == 5 && m[3] == 6));
}

}  // namespace perceiver::io
