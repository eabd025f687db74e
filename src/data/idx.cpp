// IDX reader/writer over zlib's gz* API (which reads raw and gzip'ed files alike).
#include "perceiver/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "perceiver/core/error.h"
#include "perceiver/io/atomic_file.h"

namespace perceiver::data {
namespace {

constexpr uint64_t kMaxBytes = 1ull << 34;  // 16 GiB: far above any real IDX file
constexpr int kMaxRank = 4;
constexpr uint8_t kTypeU8 = 0x08;

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzPtr = std::unique_ptr<gzFile_s, GzCloser>;

const char* kind(gzFile f) { return gzdirect(f) ? "raw" : "gzip"; }

// Reads up to n bytes and returns the count; a short count means end of data. A gzip stream that
// ends mid-way sets `cut`; corrupt data and I/O errors throw.
size_t gz_read(gzFile f, void* dst, size_t n, const std::string& path, bool& cut) {
  size_t got = 0;
  while (got < n) {
    const unsigned want = static_cast<unsigned>(std::min<size_t>(n - got, 1u << 30));
    const int r = gzread(f, static_cast<char*>(dst) + got, want);
    if (r < 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      throw_error("[idx] ", path, ": read failed after ", got, " bytes: ",
                  errnum == Z_ERRNO ? std::strerror(errno) : msg);
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  int errnum = Z_OK;
  const char* msg = gzerror(f, &errnum);
  if (errnum == Z_BUF_ERROR) cut = true;  // zlib's "unexpected end of file"
  else if (errnum != Z_OK) throw_error("[idx] ", path, ": corrupt gzip data: ", msg);
  return got;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  GzPtr f(gzopen(path.c_str(), "rb"));
  if (!f) throw_error("[idx] ", path, ": cannot open: ", std::strerror(errno ? errno : ENOMEM));
  gzbuffer(f.get(), 1 << 17);

  uint8_t magic[4];
  bool cut = false;
  const char* cut_note = " (gzip stream ends early)";
  const size_t got_magic = gz_read(f.get(), magic, 4, path, cut);
  check(got_magic == 4, "[idx] ", path, ": file is truncated: expected a 4-byte magic number, got ",
        got_magic, " bytes", cut ? cut_note : "");
  check(magic[0] == 0 && magic[1] == 0, "[idx] ", path,
        ": bad magic number: expected 0x0000TTRR, got 0x", std::hex, be32(magic));
  check(magic[2] == kTypeU8, "[idx] ", path, ": unsupported element type 0x", std::hex,
        int(magic[2]), ": expected 0x08 (unsigned byte)");
  const int rank = magic[3];
  check(rank >= 1 && rank <= kMaxRank, "[idx] ", path, ": rank ", rank, " out of range [1, ",
        kMaxRank, "]");

  std::vector<uint8_t> dim_bytes(4 * static_cast<size_t>(rank));
  const size_t got_dims = gz_read(f.get(), dim_bytes.data(), dim_bytes.size(), path, cut);
  check(got_dims == dim_bytes.size(), "[idx] ", path, ": file is truncated: expected ",
        dim_bytes.size(), " bytes of dimensions, got ", got_dims, cut ? cut_note : "");
  IdxArray out;
  uint64_t total = 1;
  for (int i = 0; i < rank; ++i) {
    out.dims.push_back(be32(&dim_bytes[4 * i]));
    const bool overflow = __builtin_mul_overflow(total, static_cast<uint64_t>(out.dims.back()), &total);
    check(!overflow && total <= kMaxBytes, "[idx] ", path, ": dimensions ", dims_str(out.dims),
          " declare more than ", kMaxBytes, " bytes");
  }

  // Grow as data arrives so a lying header cannot force a huge allocation up front.
  const size_t header = 4 + dim_bytes.size();
  size_t got = 0;
  while (got < total) {
    const size_t step = std::min<size_t>(total - got, std::max<size_t>(got, 1u << 20));
    out.values.resize(got + step);
    const size_t n = gz_read(f.get(), out.values.data() + got, step, path, cut);
    got += n;
    if (n < step) break;
  }
  check(got == total, "[idx] ", path, ": file is truncated: dimensions ", dims_str(out.dims),
        " need ", header + total, " bytes (", total, " of data), got ", header + got, " (", got,
        " of data, ", kind(f.get()), ")", cut ? cut_note : "");
  uint8_t extra[4096];
  const size_t trailing = gz_read(f.get(), extra, sizeof extra, path, cut);
  check(!cut, "[idx] ", path, ": gzip stream is truncated after all ", total,
        " bytes of data (the gzip trailer is missing or cut)");
  check(trailing == 0, "[idx] ", path, ": trailing garbage: expected ", header + total,
        " bytes for dimensions ", dims_str(out.dims), ", found ", trailing,
        trailing == sizeof extra ? " or more" : "", " extra bytes (", kind(f.get()), ")");
  return out;
}

IdxImages read_idx_images(const std::string& path) {
  IdxArray a = read_idx(path);
  check(a.dims.size() == 3, "[idx] ", path, ": expected an image file (magic 0x00000803, dims ",
        "[count, rows, cols]), got rank ", a.dims.size(), " dims ", dims_str(a.dims));
  IdxImages im;
  im.count = a.dims[0];
  im.rows = a.dims[1];
  im.cols = a.dims[2];
  im.pixels = std::move(a.values);
  return im;
}

std::vector<uint8_t> read_idx_labels(const std::string& path) {
  IdxArray a = read_idx(path);
  check(a.dims.size() == 1, "[idx] ", path, ": expected a label file (magic 0x00000801, dims ",
        "[count]), got rank ", a.dims.size(), " dims ", dims_str(a.dims));
  return std::move(a.values);
}

void write_idx(const std::string& path, const IdxArray& array, bool gzip) {
  const int rank = static_cast<int>(array.dims.size());
  check(rank >= 1 && rank <= kMaxRank, "[idx] ", path, ": rank ", rank, " out of range [1, ",
        kMaxRank, "]");
  uint64_t total = 1;
  for (int64_t d : array.dims) {
    check(d >= 0 && d <= 0xffffffffll, "[idx] ", path, ": dimension ", d,
          " out of range [0, 2^32)");
    total *= static_cast<uint64_t>(d);
  }
  check(total == array.values.size(), "[idx] ", path, ": dimensions ", dims_str(array.dims),
        " need ", total, " values, got ", array.values.size());
  std::string bytes = {0, 0, static_cast<char>(kTypeU8), static_cast<char>(rank)};
  for (int64_t d : array.dims)
    for (int s = 24; s >= 0; s -= 8) bytes.push_back(static_cast<char>((d >> s) & 0xff));
  bytes.append(reinterpret_cast<const char*>(array.values.data()), array.values.size());
  if (!gzip) {
    io::write_file_atomic(path, bytes);
    return;
  }
  // gzip wrapper (windowBits 15 + 16) via deflate, so the write stays atomic.
  check(bytes.size() < (1ull << 31), "[idx] ", path, ": ", bytes.size(),
        " bytes is too large for the gzip writer");
  z_stream zs{};
  check(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK, "[idx] ", path,
        ": deflateInit2 failed");
  std::string out(deflateBound(&zs, bytes.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(bytes.data());
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  check(rc == Z_STREAM_END, "[idx] ", path, ": gzip compression failed (zlib code ", rc, ")");
  io::write_file_atomic(path, out);
}

}  // namespace perceiver::data
