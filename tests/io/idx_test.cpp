// IDX reading (raw and gzip), validation errors, and Fashion-MNIST loading (hand-made and, when
// installed, the real Debian dataset).
#include "perceiver/data/idx.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>

#include "io_test_util.h"
#include "perceiver/data/fashion_mnist.h"
#include "perceiver/io/atomic_file.h"

namespace perceiver {
namespace {

using testing::TempDir;
using testing::throws_error;
using testing::write_bytes;

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// A hand-made IDX byte string: magic, dims, then the given payload.
std::string idx_bytes(uint32_t magic, const std::vector<uint32_t>& dims, const std::string& payload) {
  std::string s = be32(magic);
  for (uint32_t d : dims) s += be32(d);
  return s + payload;
}

std::string payload(size_t n, int start = 0) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((start + i * 7) % 256);
  return s;
}

// gzip with zlib's gz* writer (independent of write_idx).
void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), int(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

TEST(Idx, ReadsHandMadeRawAndGzipImagesAndLabels) {
  TempDir tmp;
  const std::string px = payload(3 * 2 * 4);
  write_bytes(tmp.file("img"), idx_bytes(0x803, {3, 2, 4}, px));
  write_gz(tmp.file("img.gz"), idx_bytes(0x803, {3, 2, 4}, px));
  for (const char* name : {"img", "img.gz"}) {
    const data::IdxImages im = data::read_idx_images(tmp.file(name));
    EXPECT_EQ(im.count, 3);
    EXPECT_EQ(im.rows, 2);
    EXPECT_EQ(im.cols, 4);
    EXPECT_EQ(std::string(im.pixels.begin(), im.pixels.end()), px) << name;
  }
  write_gz(tmp.file("lab.gz"), idx_bytes(0x801, {5}, std::string("\x00\x01\x09\x02\x03", 5)));
  EXPECT_EQ(data::read_idx_labels(tmp.file("lab.gz")), (std::vector<uint8_t>{0, 1, 9, 2, 3}));
  write_bytes(tmp.file("zero"), idx_bytes(0x801, {0}, ""));
  EXPECT_TRUE(data::read_idx_labels(tmp.file("zero")).empty());
}

TEST(Idx, WriterRoundTrips) {
  TempDir tmp;
  data::IdxArray a;
  a.dims = {2, 3, 5};
  const std::string px = payload(30, 11);
  a.values.assign(px.begin(), px.end());
  for (bool gz : {false, true}) {
    const std::string p = tmp.file(gz ? "w.gz" : "w");
    data::write_idx(p, a, gz);
    EXPECT_EQ(io::read_file(p).substr(0, 2) == "\x1f\x8b", gz);
    const data::IdxArray b = data::read_idx(p);
    EXPECT_EQ(b.dims, a.dims);
    EXPECT_EQ(b.values, a.values);
  }
  a.dims = {4};
  EXPECT_TRUE(throws_error([&] { data::write_idx(tmp.file("x"), a); }, {"need 4 values, got 30"}));
}

TEST(Idx, ValidationErrors) {
  TempDir tmp;
  const std::string p = tmp.file("bad-idx");
  auto expect = [&](const std::string& bytes, std::vector<std::string> frags, bool labels = false) {
    frags.push_back("[idx] " + p + ": ");
    write_bytes(p, bytes);
    return throws_error([&] { labels ? (void)data::read_idx_labels(p) : (void)data::read_idx_images(p); },
                        frags);
  };
  EXPECT_TRUE(expect("", {"expected a 4-byte magic number, got 0 bytes"}));
  EXPECT_TRUE(expect(idx_bytes(0x12345678, {1}, "x"), {"bad magic number", "0x12345678"}));
  EXPECT_TRUE(expect(idx_bytes(0xd01, {1}, "xxxx"), {"unsupported element type 0xd"}));
  EXPECT_TRUE(expect(idx_bytes(0x800, {}, ""), {"rank 0 out of range"}));
  EXPECT_TRUE(expect(idx_bytes(0x803, {2, 3}, "").substr(0, 10), {"expected 12 bytes of dimensions, got 6"}));
  // Truncated data: 2x2x2 images need 8 bytes of data (16 in all); only 5 there.
  EXPECT_TRUE(expect(idx_bytes(0x803, {2, 2, 2}, payload(5)),
                     {"file is truncated", "need 24 bytes (8 of data), got 21 (5 of data, raw)"}));
  EXPECT_TRUE(expect(idx_bytes(0x803, {2, 2, 2}, payload(9)),
                     {"trailing garbage", "expected 24 bytes", "found 1 extra"}));
  EXPECT_TRUE(expect(idx_bytes(0x801, {3}, "abc"), {"expected an image file", "rank 1"}));
  EXPECT_TRUE(expect(idx_bytes(0x803, {1, 1, 1}, "a"), {"expected a label file", "rank 3"}, true));
  // Huge declared sizes fail cleanly without allocating them.
  EXPECT_TRUE(expect(idx_bytes(0x803, {0xffffffff, 0xffffffff, 0xffffffff}, ""), {"declare more than"}));
  EXPECT_TRUE(expect(idx_bytes(0x803, {60000, 28, 28}, payload(100)), {"need 47040016 bytes"}));

  // gzip: truncated compressed stream, corrupt stream, truncated content inside a valid stream.
  write_gz(p, idx_bytes(0x803, {20, 28, 28}, payload(20 * 28 * 28)));
  const std::string gz = io::read_file(p);
  EXPECT_TRUE(expect(gz.substr(0, gz.size() / 2), {"truncated"}));
  EXPECT_TRUE(expect(gz.substr(0, gz.size() - 4), {"truncated"}));
  std::string corrupt = gz;
  for (size_t i = 20; i < 60; ++i) corrupt[i] = static_cast<char>(corrupt[i] ^ 0x5a);
  EXPECT_TRUE(expect(corrupt, {}));
  write_gz(p, idx_bytes(0x803, {2, 2, 2}, payload(3)));
  const std::string short_gz = io::read_file(p);
  EXPECT_TRUE(expect(short_gz, {"need 24 bytes (8 of data), got 19 (3 of data, gzip)"}));

  EXPECT_TRUE(throws_error([&] { data::read_idx(tmp.file("missing")); },
                           {"[idx] ", "missing: cannot open", "No such file"}));
}

void write_fmnist(const TempDir& tmp, const std::string& prefix, uint32_t n_img, uint32_t n_lab,
                  const std::string& labels) {
  write_gz(tmp.file(prefix + "-images-idx3-ubyte.gz"), idx_bytes(0x803, {n_img, 2, 2}, payload(4 * n_img, 1)));
  write_bytes(tmp.file(prefix + "-labels-idx1-ubyte"), idx_bytes(0x801, {n_lab}, labels));
}

TEST(FashionMnist, LoadsHandMadeDirectory) {
  TempDir tmp;
  write_fmnist(tmp, "t10k", 3, 3, std::string("\x00\x09\x04", 3));
  const data::Dataset ds = data::load_fashion_mnist(tmp.dir(), /*train=*/false);
  EXPECT_EQ(ds.inputs.shape(), (Shape{3, 2, 2}));
  EXPECT_EQ(ds.labels.shape(), (Shape{3}));
  EXPECT_EQ(ds.labels.data<int32_t>()[1], 9);
  const std::string px = payload(12, 1);
  for (int i = 0; i < 12; ++i)
    EXPECT_EQ(ds.inputs.f32()[i], static_cast<uint8_t>(px[i]) / 255.0f);
  EXPECT_EQ(ds.class_names.size(), 10u);
  EXPECT_EQ(ds.class_names[0], "T-shirt/top");
  EXPECT_EQ(ds.class_names[9], "Ankle boot");
}

TEST(FashionMnist, Errors) {
  TempDir tmp;
  EXPECT_TRUE(throws_error([&] { data::load_fashion_mnist(tmp.dir(), true); },
                           {"[fashion_mnist] ", "train-images-idx3-ubyte: not found", ".gz"}));
  write_fmnist(tmp, "train", 3, 2, std::string("\x00\x01", 2));
  EXPECT_TRUE(throws_error([&] { data::load_fashion_mnist(tmp.dir(), true); },
                           {"[fashion_mnist] ", "train-labels-idx1-ubyte: has 2 labels, but ",
                            "train-images-idx3-ubyte.gz has 3 images"}));
  write_fmnist(tmp, "train", 2, 2, std::string("\x00\x0a", 2));
  EXPECT_TRUE(throws_error([&] { data::load_fashion_mnist(tmp.dir(), true); },
                           {"label 1 is 10, expected a class in [0, 10)"}));
}

TEST(FashionMnist, RealTestSetWhenInstalled) {
  const std::string dir = data::kFashionMnistDefaultDir;
  if (!std::filesystem::exists(dir + "/t10k-images-idx3-ubyte.gz") &&
      !std::filesystem::exists(dir + "/t10k-images-idx3-ubyte"))
    GTEST_SKIP() << "dataset-fashion-mnist not installed in " << dir;
  const data::Dataset ds = data::load_fashion_mnist(dir, /*train=*/false);
  ASSERT_EQ(ds.inputs.shape(), (Shape{10000, 28, 28}));
  ASSERT_EQ(ds.labels.shape(), (Shape{10000}));
  std::vector<int> hist(10, 0);
  const int32_t* lab = ds.labels.data<int32_t>();
  for (int i = 0; i < 10000; ++i) ++hist[static_cast<size_t>(lab[i])];
  EXPECT_EQ(hist, std::vector<int>(10, 1000));
  float lo = 1, hi = 0;
  for (float v : ds.inputs.to_vector()) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_EQ(lo, 0.0f);
  EXPECT_EQ(hi, 1.0f);
}

}  // namespace
}  // namespace perceiver
