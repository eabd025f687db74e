// safetensors: round trips, dtype conversion from hand-made files, and every kind of corrupt or
// malicious header giving a clear Error (never a crash).
#include "perceiver/io/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "io_test_util.h"
#include "perceiver/core/random.h"
#include "perceiver/io/atomic_file.h"

namespace perceiver {
namespace {

using testing::TempDir;
using testing::throws_error;
using testing::write_bytes;

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(n >> (8 * i));
  return s;
}

// A safetensors file from a header string and a data buffer.
std::string st_file(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

template <typename T> std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

TEST(Safetensors, RoundTripKeepsNamesShapesOrderAndMetadata) {
  TempDir tmp;
  const std::string p = tmp.file("m.safetensors");
  Tensor w = Tensor::from_vector({2, 3}, {1, -2, 3.5f, 4, 5e-8f, -6e7f});
  Tensor labels = Tensor::from_vector_i32({4}, {0, -7, 2147483647, -2147483647 - 1});
  Tensor s = Tensor::scalar(0.25f);
  Tensor empty = Tensor::empty({0, 5});
  io::save_safetensors(p, {{"z.weight", w}, {"a.labels", labels}, {"scalar", s}, {"empty", empty}},
                       {{"format", "pt"}, {"step", "42"}});

  const std::string bytes = io::read_file(p);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u) << "header must be padded to a multiple of 8";
  EXPECT_EQ(bytes.size(), 8 + n + 6 * 4 + 4 * 4 + 4);

  const io::SafetensorsFile f = io::load_safetensors(p);
  EXPECT_EQ(f.order, (std::vector<std::string>{"z.weight", "a.labels", "scalar", "empty"}));
  EXPECT_EQ(f.metadata, (std::map<std::string, std::string>{{"format", "pt"}, {"step", "42"}}));
  EXPECT_TRUE(f.skipped.empty());
  EXPECT_EQ(f.tensors.at("z.weight").shape(), (Shape{2, 3}));
  EXPECT_EQ(f.tensors.at("z.weight").to_vector(), w.to_vector());
  const Tensor& l = f.tensors.at("a.labels");
  ASSERT_EQ(l.dtype(), DType::kI32);
  EXPECT_EQ(std::vector<int32_t>(l.data<int32_t>(), l.data<int32_t>() + 4),
            (std::vector<int32_t>{0, -7, 2147483647, -2147483647 - 1}));
  EXPECT_EQ(f.tensors.at("scalar").shape(), Shape{});
  EXPECT_EQ(f.tensors.at("scalar").item(), 0.25f);
  EXPECT_EQ(f.tensors.at("empty").shape(), (Shape{0, 5}));

  const io::SafetensorsHeader h = io::read_safetensors_header(p);
  EXPECT_EQ(h.data_start % 8, 0u);
  ASSERT_EQ(h.entries.size(), 4u);
  EXPECT_EQ(h.entries[1].dtype, "I32");
  EXPECT_EQ(io::load_safetensors_raw(p, "a.labels").size(), 16u);

  // Re-saving the loaded pairs reproduces the file byte for byte.
  const std::string p2 = tmp.file("m2.safetensors");
  io::save_safetensors(p2, io::ordered_tensors(f), f.metadata);
  EXPECT_EQ(io::read_file(p2), bytes);
}

TEST(Safetensors, SaveRejectsBadNames) {
  TempDir tmp;
  const std::string p = tmp.file("bad.safetensors");
  Tensor t = Tensor::zeros({2});
  EXPECT_TRUE(throws_error([&] { io::save_safetensors(p, {{"x", t}, {"y", t}, {"x", t}}); },
                           {"[safetensors] ", p, "duplicate tensor name \"x\""}));
  EXPECT_TRUE(throws_error([&] { io::save_safetensors(p, {{"__metadata__", t}}); }, {"reserved"}));
  EXPECT_TRUE(throws_error([&] { io::save_safetensors(p, {{"", t}}); }, {"non-empty"}));
  EXPECT_TRUE(throws_error([&] { io::save_safetensors(p, {{"u", Tensor()}}); }, {"undefined"}));
  EXPECT_TRUE(tmp.list().empty()) << "nothing may be written on error";
}

TEST(Safetensors, ConvertsHalfBfloatDoubleAndIntegers) {
  TempDir tmp;
  const std::string p = tmp.file("conv.safetensors");
  const std::vector<uint16_t> f16 = {0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x03FF, 0x7C00, 0xFC00,
                                     0x7E00, 0x8000};
  const std::vector<uint16_t> bf16 = {0x3F80, 0xC040, 0x4049, 0x0000};
  const std::vector<double> f64 = {1.5, -1e-3};
  const std::vector<int64_t> i64 = {-5, 2147483647, -2147483648LL};
  const std::vector<uint8_t> u8 = {0, 255};
  const std::vector<uint8_t> bools = {1, 0, 1};
  std::string data = bytes_of(f16) + bytes_of(bf16) + bytes_of(f64) + bytes_of(i64) +
                     bytes_of(u8) + bytes_of(bools);
  const std::string header =
      R"({"h":{"dtype":"F16","shape":[2,5],"data_offsets":[0,20]},)"
      R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[20,28]},)"
      R"("d":{"dtype":"F64","shape":[2],"data_offsets":[28,44]},)"
      R"("i":{"dtype":"I64","shape":[3],"data_offsets":[44,68]},)"
      R"("u":{"dtype":"U8","shape":[2],"data_offsets":[68,70]},)"
      R"("q":{"dtype":"BOOL","shape":[3],"data_offsets":[70,73]},)"
      R"("__metadata__":{"note":"hand made"}})";
  write_bytes(p, st_file(header, data));
  const io::SafetensorsFile f = io::load_safetensors(p);
  EXPECT_EQ(f.order, (std::vector<std::string>{"h", "b", "d", "i", "u", "q"}));
  EXPECT_EQ(f.metadata.at("note"), "hand made");

  const std::vector<float> h = f.tensors.at("h").to_vector();
  EXPECT_EQ(f.tensors.at("h").shape(), (Shape{2, 5}));
  EXPECT_EQ(h[0], 1.0f);
  EXPECT_EQ(h[1], -2.0f);
  EXPECT_EQ(h[2], 0.5f);
  EXPECT_EQ(h[3], 65504.0f);
  EXPECT_EQ(h[4], std::ldexp(1.0f, -24));            // smallest subnormal
  EXPECT_EQ(h[5], 1023 * std::ldexp(1.0f, -24));     // largest subnormal
  EXPECT_EQ(h[6], std::numeric_limits<float>::infinity());
  EXPECT_EQ(h[7], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(h[8]));
  EXPECT_TRUE(h[9] == 0.0f && std::signbit(h[9]));
  // Every finite half converts exactly (check against ldexp arithmetic).
  for (uint32_t bits = 0; bits < 0x7C00; ++bits) {
    const int e = bits >> 10, m = bits & 0x3ff;
    const float ref = e == 0 ? std::ldexp(float(m), -24) : std::ldexp(float(1024 + m), e - 25);
    ASSERT_EQ(io::f16_to_f32(static_cast<uint16_t>(bits)), ref) << "bits " << bits;
  }

  EXPECT_EQ(f.tensors.at("b").to_vector(), (std::vector<float>{1.0f, -3.0f, 3.140625f, 0.0f}));
  EXPECT_EQ(f.tensors.at("d").to_vector(), (std::vector<float>{1.5f, -1e-3f}));
  const auto ints = [&](const char* name) {
    const Tensor& t = f.tensors.at(name);
    EXPECT_EQ(t.dtype(), DType::kI32);
    return std::vector<int32_t>(t.data<int32_t>(), t.data<int32_t>() + t.numel());
  };
  EXPECT_EQ(ints("i"), (std::vector<int32_t>{-5, 2147483647, -2147483647 - 1}));
  EXPECT_EQ(ints("u"), (std::vector<int32_t>{0, 255}));
  EXPECT_EQ(ints("q"), (std::vector<int32_t>{1, 0, 1}));
}

TEST(Safetensors, IntegerRangeAndBoolChecks) {
  TempDir tmp;
  const std::string p = tmp.file("range.safetensors");
  write_bytes(p, st_file(R"({"big":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})",
                         bytes_of(std::vector<int64_t>{1, 1LL << 40})));
  EXPECT_TRUE(throws_error([&] { io::load_safetensors(p); },
                           {"[safetensors] ", p, "\"big\"", "element 1", "does not fit in int32"}));
  write_bytes(p, st_file(R"({"flag":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}})",
                         std::string(1, '\x07')));
  EXPECT_TRUE(throws_error([&] { io::load_safetensors(p); }, {"\"flag\"", "expected 0 or 1"}));
}

TEST(Safetensors, UnsupportedDtypeFailsUnlessSkipped) {
  TempDir tmp;
  const std::string p = tmp.file("f8.safetensors");
  write_bytes(p, st_file(R"({"f8":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]},)"
                         R"("ok":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
                         std::string("\x01\x02", 2) + bytes_of(std::vector<float>{7.0f})));
  EXPECT_TRUE(throws_error([&] { io::load_safetensors(p); },
                           {"[safetensors] ", p, "\"f8\"", "F8_E4M3", "cannot be converted"}));
  io::SafetensorsLoadOptions opts;
  opts.skip_unsupported = true;
  const io::SafetensorsFile f = io::load_safetensors(p, opts);
  EXPECT_EQ(f.skipped, std::vector<std::string>{"f8"});
  EXPECT_EQ(f.order, std::vector<std::string>{"ok"});
  EXPECT_EQ(f.tensors.at("ok").item(), 7.0f);
  EXPECT_EQ(io::load_safetensors_raw(p, "f8"), (std::vector<uint8_t>{1, 2}));
  EXPECT_TRUE(throws_error([&] { io::load_safetensors_raw(p, "nope"); }, {"no tensor named"}));
}

struct BadCase {
  const char* what;
  std::string bytes;
  std::vector<std::string> fragments;
};

std::vector<BadCase> bad_cases() {
  const std::string four_floats = bytes_of(std::vector<float>{1, 2, 3, 4});
  auto one = [&](const std::string& entry, const std::string& data) {
    return st_file(R"({"t":)" + entry + "}", data);
  };
  const std::string good_header = R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  return {
      {"empty file", "", {"0 bytes, too small"}},
      {"7 bytes", std::string(7, '\0'), {"7 bytes, too small"}},
      {"header cut", le64(100) + std::string(50, ' '), {"header is truncated", "needs at least 108"}},
      {"huge header length", le64(~0ull) + "{}", {"header length 18446744073709551615", "limit"}},
      {"header length over 100MB", le64(200ull << 20) + "{}", {"exceeds the limit"}},
      {"data cut", st_file(good_header, four_floats.substr(0, 9)), {"run past the end"}},
      {"not JSON", st_file("{\"t\": [1, 2", ""), {"not valid JSON"}},
      {"binary garbage", st_file(std::string("\xff\xfe\x00\x01garbage", 11), ""), {"not valid JSON"}},
      {"JSON array", st_file("[1,2,3]", ""), {"must be a JSON object", "array"}},
      {"JSON string", st_file("\"hi\"", ""), {"must be a JSON object"}},
      {"entry not object", one("[1]", ""), {"\"t\"", "expected an object"}},
      {"missing key", one(R"({"dtype":"F32","shape":[4]})", four_floats), {"needs dtype, shape"}},
      {"extra key", one(R"({"dtype":"F32","shape":[4],"data_offsets":[0,16],"x":1})", four_floats),
       {"unexpected key \"x\""}},
      {"unknown dtype", one(R"({"dtype":"F99","shape":[4],"data_offsets":[0,16]})", four_floats),
       {"unknown dtype \"F99\"", "F32"}},
      {"dtype not string", one(R"({"dtype":4,"shape":[4],"data_offsets":[0,16]})", four_floats),
       {"dtype must be a string"}},
      {"negative shape", one(R"({"dtype":"F32","shape":[-4],"data_offsets":[0,16]})", four_floats),
       {"non-negative integers", "[-4]"}},
      {"float shape", one(R"({"dtype":"F32","shape":[4.0],"data_offsets":[0,16]})", four_floats),
       {"non-negative integers"}},
      {"shape not array", one(R"({"dtype":"F32","shape":4,"data_offsets":[0,16]})", four_floats),
       {"shape must be an array"}},
      {"overflowing shape",
       one(R"({"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,16]})",
           four_floats),
       {"overflows the element count"}},
      {"overflowing bytes",
       one(R"({"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,16]})", four_floats),
       {"overflows the byte count"}},
      {"shape beyond int64",
       one(R"({"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,16]})", four_floats),
       {"overflows"}},
      {"offsets past end", one(R"({"dtype":"F32","shape":[4],"data_offsets":[16,32]})", four_floats),
       {"run past the end of the data buffer (16 bytes)"}},
      {"offsets huge",
       one(R"({"dtype":"F32","shape":[4],"data_offsets":[18446744073709551600,18446744073709551615]})",
           four_floats),
       {"past the end"}},
      {"begin after end", one(R"({"dtype":"F32","shape":[0],"data_offsets":[8,4]})", four_floats),
       {"begin > end"}},
      {"negative offset", one(R"({"dtype":"F32","shape":[4],"data_offsets":[-16,0]})", four_floats),
       {"data_offsets[0]", "non-negative integer"}},
      {"offsets wrong length", one(R"({"dtype":"F32","shape":[4],"data_offsets":[0]})", four_floats),
       {"must be [begin, end]"}},
      {"size mismatch", one(R"({"dtype":"F32","shape":[3],"data_offsets":[0,16]})", four_floats),
       {"F32 shape [3] needs 12 bytes", "hold 16"}},
      {"overlap",
       st_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
               four_floats),
       {"\"a\" [0, 12)", "\"b\" [8, 16)", "overlap"}},
      {"alias",
       st_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
               R"("b":{"dtype":"I32","shape":[4],"data_offsets":[0,16]}})",
               four_floats),
       {"overlap"}},
      {"duplicate name",
       st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
               R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
               four_floats),
       {"duplicate tensor name \"a\""}},
      {"metadata value not string", st_file(R"({"__metadata__":{"step":42}})", ""),
       {"__metadata__ value for \"step\" must be a string", "42"}},
      {"deeply nested shape",
       one(R"({"dtype":"F32","shape":)" + std::string(1000000, '[') + std::string(1000000, ']') +
               R"(,"data_offsets":[0,0]})",
           ""),
       {"header nests JSON 1000002 levels deep"}},
      {"nested array shape", one(R"({"dtype":"F32","shape":[[4]],"data_offsets":[0,16]})", four_floats),
       {"non-negative integers, got [[4]]"}},
      {"metadata not object", st_file(R"({"__metadata__":["a"]})", ""),
       {"__metadata__ must be an object"}},
  };
}

TEST(Safetensors, CorruptOrMaliciousFilesGiveClearErrors) {
  TempDir tmp;
  const std::string p = tmp.file("bad.safetensors");
  for (const BadCase& c : bad_cases()) {
    write_bytes(p, c.bytes);
    std::vector<std::string> frags = c.fragments;
    frags.push_back("[safetensors] " + p + ": ");
    EXPECT_TRUE(throws_error([&] { io::load_safetensors(p); }, frags)) << c.what;
  }
  EXPECT_TRUE(throws_error([&] { io::load_safetensors(tmp.file("missing")); },
                           {"[safetensors] ", "missing: cannot open", "No such file"}));
  EXPECT_TRUE(throws_error([&] { io::load_safetensors(tmp.dir()); }, {"not a regular file"}));
}

// Random byte flips and truncations of a valid file: each load either succeeds or throws
// perceiver::Error; nothing else (no crash, no other exception type).
TEST(Safetensors, MutatedFilesNeverCrash) {
  TempDir tmp;
  const std::string good = tmp.file("good.safetensors");
  io::save_safetensors(good,
                       {{"w", Tensor::from_vector({2, 2}, {1, 2, 3, 4})},
                        {"idx", Tensor::from_vector_i32({3}, {1, 2, 3})}},
                       {{"k", "v"}});
  const std::string bytes = io::read_file(good);
  const std::string p = tmp.file("mut.safetensors");
  Rng rng(123);
  int ok = 0, errors = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string m = bytes;
    if (iter % 5 == 0) {
      m.resize(rng.below(static_cast<uint32_t>(m.size())));
    } else {
      const int flips = 1 + static_cast<int>(rng.below(3));
      for (int k = 0; k < flips; ++k)
        m[rng.below(static_cast<uint32_t>(m.size()))] = static_cast<char>(rng.below(256));
    }
    write_bytes(p, m);
    try {
      io::load_safetensors(p);
      ++ok;
    } catch (const Error& e) {
      ++errors;
      ASSERT_NE(std::string(e.what()).find("[safetensors] " + p), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(errors, 100);
  EXPECT_GT(ok, 10);
}

}  // namespace
}  // namespace perceiver
