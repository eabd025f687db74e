// ZipReader: stored, deflate and zip64 archives read back exactly; corrupt directories, bad
// offsets, CRC mismatches, truncations and byte flips give a clear Error, never a crash.
#include "perceiver/io/zip_reader.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "io_test_util.h"
#include "perceiver/io/atomic_file.h"
#include "torch_bin_util.h"

namespace perceiver {
namespace {

using testing::le;
using testing::TempDir;
using testing::throws_error;
using testing::write_bytes;
using testing::zip_stored;

const std::string kFixtures = std::string(PERCEIVER_SOURCE_DIR) + "/tests/data/torch_bin/";

TEST(ZipReader, ReadsStoredEntries) {
  TempDir tmp;
  const std::string p = tmp.file("a.zip");
  write_bytes(p, zip_stored({{"dir/one", "hello"}, {"two", ""}, {"three", std::string(1000, 'x')}}));
  const io::ZipReader zip(p);
  ASSERT_EQ(zip.entries().size(), 3u);
  EXPECT_EQ(zip.entries()[0].name, "dir/one");
  EXPECT_EQ(zip.read("dir/one"), "hello");
  EXPECT_EQ(zip.read("two"), "");
  EXPECT_EQ(zip.read(*zip.find("three")), std::string(1000, 'x'));
  EXPECT_EQ(zip.find("missing"), nullptr);
  EXPECT_TRUE(throws_error([&] { zip.read("missing"); }, {"[zip]", "no entry named \"missing\""}));
  EXPECT_TRUE(io::has_zip_magic(p));
}

TEST(ZipReader, EmptyArchiveHasNoEntries) {
  TempDir tmp;
  const std::string p = tmp.file("empty.zip");
  write_bytes(p, zip_stored({}));
  EXPECT_TRUE(io::ZipReader(p).entries().empty());
  EXPECT_TRUE(io::has_zip_magic(p));
}

TEST(ZipReader, DeflateAndZip64MatchStored) {
  const io::ZipReader stored(kFixtures + "float32.bin");
  const io::ZipReader deflate(kFixtures + "deflate.bin");
  const io::ZipReader zip64(kFixtures + "zip64.bin");
  ASSERT_EQ(stored.entries().size(), deflate.entries().size());
  ASSERT_EQ(stored.entries().size(), zip64.entries().size());
  bool any_compressed = false, any_zip64 = false;
  for (size_t i = 0; i < stored.entries().size(); ++i) {
    const io::ZipEntry& e = stored.entries()[i];
    ASSERT_EQ(deflate.entries()[i].name, e.name);
    any_compressed |= deflate.entries()[i].method == 8;
    EXPECT_EQ(deflate.read(deflate.entries()[i]), stored.read(e)) << e.name;
    EXPECT_EQ(zip64.read(e.name), stored.read(e)) << e.name;
  }
  // The zip64 fixture really uses zip64 records (0xffffffff placeholders in the directory).
  const std::string raw = io::read_file(kFixtures + "zip64.bin");
  any_zip64 = raw.find(le(0x06064b50, 4)) != std::string::npos;
  EXPECT_TRUE(any_compressed);
  EXPECT_TRUE(any_zip64);
}

TEST(ZipReader, RejectsNonZipAndMissingFiles) {
  TempDir tmp;
  const std::string p = tmp.file("not.zip");
  write_bytes(p, std::string(100, 'a'));
  EXPECT_TRUE(throws_error([&] { io::ZipReader r(p); }, {"[zip]", p, "not a ZIP archive"}));
  write_bytes(p, "PK");
  EXPECT_TRUE(throws_error([&] { io::ZipReader r(p); }, {"too small"}));
  EXPECT_FALSE(io::has_zip_magic(p));
  EXPECT_TRUE(throws_error([&] { io::ZipReader r(tmp.file("nope")); }, {"cannot open"}));
  EXPECT_TRUE(throws_error([&] { io::ZipReader r(tmp.dir()); }, {"not a regular file"}));
}

TEST(ZipReader, CorruptCentralDirectoryFixture) {
  EXPECT_TRUE(throws_error([] { io::ZipReader r(kFixtures + "bad_central_directory.bin"); },
                           {"[zip]", "corrupt central directory", "record 1"}));
}

TEST(ZipReader, RejectsBadHeadersAndData) {
  TempDir tmp;
  const std::string p = tmp.file("x.zip");
  const std::string good = zip_stored({{"a", "abcdef"}});
  const size_t cd = good.find(le(0x02014b50, 4));
  ASSERT_NE(cd, std::string::npos);

  std::string bad = good;
  bad[cd + 10] = 99;  // compression method
  write_bytes(p, bad);
  EXPECT_TRUE(throws_error([&] { io::ZipReader r(p); }, {"compression method 99"}));

  bad = good;
  bad[cd + 8] = 1;  // encrypted flag
  write_bytes(p, bad);
  EXPECT_TRUE(throws_error([&] { io::ZipReader r(p); }, {"encrypted"}));

  bad = good;
  bad.replace(cd + 42, 4, le(5000, 4));  // local header offset past the directory
  write_bytes(p, bad);
  EXPECT_TRUE(throws_error([&] { io::ZipReader r(p); }, {"runs past the central directory"}));

  bad = good;
  bad.replace(cd + 20, 8, le(7, 4) + le(7, 4));  // sizes larger than the data
  write_bytes(p, bad);
  EXPECT_TRUE(throws_error([&] { io::ZipReader(p).read("a"); }, {"CRC-32"}));

  bad = good;
  bad[30 + 1] ^= 1;  // corrupt data byte: CRC mismatch
  write_bytes(p, bad);
  EXPECT_TRUE(throws_error([&] { io::ZipReader(p).read("a"); }, {"CRC-32", "\"a\""}));

  bad = good;
  bad[0] = 'X';  // local header signature
  write_bytes(p, bad);
  EXPECT_TRUE(throws_error([&] { io::ZipReader(p).read("a"); }, {"bad local header signature"}));

  const size_t end = good.find(le(0x06054b50, 4));
  bad = good;
  bad.replace(end + 8, 4, le(40000, 2) + le(40000, 2));  // entry count the directory cannot hold
  write_bytes(p, bad);
  EXPECT_TRUE(throws_error([&] { io::ZipReader r(p); }, {"cannot hold"}));

  bad = good;
  bad.replace(end + 16, 4, le(0x7fffffff, 4));  // directory offset
  write_bytes(p, bad);
  EXPECT_TRUE(throws_error([&] { io::ZipReader r(p); }, {"central directory"}));

  write_bytes(p, zip_stored({{"same", "1"}, {"same", "2"}}));
  EXPECT_TRUE(throws_error([&] { io::ZipReader r(p); }, {"duplicate entry name \"same\""}));
}

TEST(ZipReader, DeflateBombAndCorruptStreamRejected) {
  TempDir tmp;
  const std::string p = tmp.file("d.bin");
  std::string raw = io::read_file(kFixtures + "deflate.bin");
  const io::ZipReader zip(kFixtures + "deflate.bin");
  const io::ZipEntry& e = zip.entries()[0];
  ASSERT_EQ(e.method, 8);
  const size_t cd = raw.find(le(0x02014b50, 4));

  std::string bad = raw;
  bad.replace(cd + 24, 4, le(0xfffffff0, 4));  // claims ~4 GB from a few hundred bytes
  write_bytes(p, bad);
  EXPECT_TRUE(throws_error([&] { io::ZipReader r(p); }, {"beyond DEFLATE's maximum ratio"}));

  bad = raw;
  bad.replace(cd + 24, 4, le(e.uncompressed_size - 1, 4));  // one byte too small
  write_bytes(p, bad);
  EXPECT_TRUE(throws_error([&] { io::ZipReader(p).read(e.name); }, {"more than the declared"}));

  bad = raw;
  bad.replace(cd + 24, 4, le(e.uncompressed_size + 1, 4));  // one byte too large
  write_bytes(p, bad);
  EXPECT_TRUE(throws_error([&] { io::ZipReader(p).read(e.name); }, {"corrupt or truncated"}));

  bad = raw;
  const size_t data = 30 + e.name.size();
  for (size_t i = 0; i < 8; ++i) bad[data + i] = static_cast<char>(0xff);
  write_bytes(p, bad);
  EXPECT_TRUE(throws_error([&] { io::ZipReader(p).read(e.name); }, {"[zip]", e.name}));
}

// Every truncation throws Error; every single-byte corruption either throws Error or reads
// back exactly the original entries (a flip in a field the reader does not use, such as a
// timestamp): never different names or bytes.
TEST(ZipReader, TruncationsAndByteFlipsNeverCrash) {
  TempDir tmp;
  const std::string p = tmp.file("f.zip");
  for (const char* name : {"float32.bin", "zip64.bin"}) {
    const std::string raw = io::read_file(kFixtures + name);
    auto read_all = [&] {
      const io::ZipReader zip(p);
      std::map<std::string, std::string> contents;
      for (const auto& e : zip.entries()) contents[e.name] = zip.read(e);
      return contents;
    };
    write_bytes(p, raw);
    const std::map<std::string, std::string> original = read_all();
    ASSERT_FALSE(original.empty()) << name;
    int flips_read = 0;
    for (size_t n = 0; n < raw.size(); n += 3) {
      std::filesystem::remove(p);  // truncating a just-written file can stall (ext4)
      write_bytes(p, raw.substr(0, n));
      EXPECT_TRUE(throws_error(read_all, {"[zip] "})) << name << " truncated to " << n;
    }
    for (size_t i = 0; i < raw.size(); ++i) {
      std::string bad = raw;
      bad[i] = static_cast<char>(bad[i] ^ 0x5a);
      std::filesystem::remove(p);
      write_bytes(p, bad);
      try {
        const std::map<std::string, std::string> got = read_all();
        ++flips_read;
        EXPECT_TRUE(got == original) << name << ": byte " << i << " flipped, read without an error but differently";
      } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("[zip] ", 0), 0u) << name << " byte " << i << ": " << e.what();
      }
    }
    EXPECT_LT(flips_read, static_cast<int>(raw.size())) << name << ": no flip was detected at all";
  }
}

}  // namespace
}  // namespace perceiver
