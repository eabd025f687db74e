// load_pytorch_bin: real torch.save fixtures (tests/data/torch_bin, made by
// tools/make_torch_bin_fixtures.py) match their expected .safetensors exactly; malicious pickles
// are refused with nothing executed; hand-built corrupt pickles and archives give clear Errors.
#include "perceiver/io/torch_pickle.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <sstream>

#include "io_test_util.h"
#include "perceiver/io/atomic_file.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/io/state_dict.h"
#include "perceiver/io/zip_reader.h"
#include "torch_bin_util.h"

namespace perceiver {
namespace {

using testing::bytes_of;
using testing::TempDir;
using testing::throws_error;
using testing::torch_zip;
using testing::write_bytes;
namespace pk = testing::pk;
using namespace std::string_literals;

const std::string kFixtures = std::string(PERCEIVER_SOURCE_DIR) + "/tests/data/torch_bin/";
const char* kPwnedMarker = "/tmp/perceiver_pwned_marker";  // see the fixture generator

std::string raw_bytes(const Tensor& t) {
  return std::string(static_cast<const char*>(t.raw_data()), t.nbytes());
}

// Same names, shapes, dtypes and bytes (order aside: safetensors files are sorted by name).
void expect_same(const io::SafetensorsFile& got, const io::SafetensorsFile& want) {
  ASSERT_EQ(got.tensors.size(), want.tensors.size());
  for (const auto& [name, w] : want.tensors) {
    ASSERT_TRUE(got.tensors.count(name)) << name;
    const Tensor& g = got.tensors.at(name);
    EXPECT_EQ(g.shape(), w.shape()) << name;
    EXPECT_EQ(g.dtype(), w.dtype()) << name;
    if (g.shape() == w.shape() && g.dtype() == w.dtype())
      EXPECT_EQ(raw_bytes(g), raw_bytes(w)) << name;
  }
}

std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// The fixture's expected values, and its pickle key order from the "order" metadata.
void expect_matches_fixture(const std::string& bin, const std::string& expected) {
  SCOPED_TRACE(bin);
  const io::SafetensorsFile got = io::load_pytorch_bin(kFixtures + bin);
  const io::SafetensorsFile want = io::load_safetensors(kFixtures + expected);
  EXPECT_TRUE(got.metadata.empty());
  EXPECT_TRUE(got.skipped.empty());
  EXPECT_EQ(got.order, split_words(want.metadata.at("order")));
  expect_same(got, want);
}

TEST(TorchBin, Float32StateDictMatchesExactly) {
  expect_matches_fixture("float32.bin", "float32.safetensors");
  const io::SafetensorsFile f = io::load_pytorch_bin(kFixtures + "float32.bin");
  EXPECT_EQ(f.order.front(), "0.weight");
  EXPECT_EQ(f.tensors.at("0.weight").shape(), (Shape{4, 5}));
  EXPECT_EQ(f.tensors.at("extra.scalar").shape(), Shape{});
  EXPECT_EQ(f.tensors.at("extra.scalar").item(), -2.5f);
  EXPECT_EQ(f.tensors.at("extra.empty").shape(), (Shape{0, 3}));
}

TEST(TorchBin, StridedAndSharedViewsMatchExactly) {
  expect_matches_fixture("views.bin", "views.safetensors");
  const io::SafetensorsFile f = io::load_pytorch_bin(kFixtures + "views.bin");
  EXPECT_EQ(f.tensors.at("shared.scalar").shape(), Shape{});
  EXPECT_EQ(f.tensors.at("shared.scalar").item(), 2.5f);  // base[5] = 5 * 0.5
  EXPECT_EQ(f.tensors.at("shared.a").to_vector(), (std::vector<float>{1, 1.5f, 2, 2.5f, 3, 3.5f}));
  EXPECT_EQ(f.tensors.at("transposed").shape(), (Shape{5, 3}));
  EXPECT_FALSE(f.tensors.at("shared.a").same_storage(f.tensors.at("shared.b")));
}

TEST(TorchBin, DtypesConvertLikeSafetensors) {
  expect_matches_fixture("dtypes.bin", "dtypes.safetensors");
  const io::SafetensorsFile f = io::load_pytorch_bin(kFixtures + "dtypes.bin");
  EXPECT_EQ(f.tensors.at("f16").dtype(), DType::kF32);
  EXPECT_EQ(f.tensors.at("bf16").dtype(), DType::kF32);
  const Tensor& i64 = f.tensors.at("i64");
  ASSERT_EQ(i64.dtype(), DType::kI32);
  EXPECT_EQ(std::vector<int32_t>(i64.data<int32_t>(), i64.data<int32_t>() + 4),
            (std::vector<int32_t>{0, -7, 2147483647, -2147483647 - 1}));
  EXPECT_EQ(f.tensors.at("bool").dtype(), DType::kI32);
}

TEST(TorchBin, ParametersDeflateAndZip64) {
  expect_matches_fixture("parameter.bin", "parameter.safetensors");
  expect_matches_fixture("deflate.bin", "float32.safetensors");
  expect_matches_fixture("zip64.bin", "float32.safetensors");
}

TEST(TorchBin, LegacyFormatRejected) {
  EXPECT_TRUE(throws_error([] { io::load_pytorch_bin(kFixtures + "legacy.bin"); },
                           {"[torch_pickle]", "legacy", "not supported"}));
}

TEST(TorchBin, ConvertToSafetensors) {
  TempDir tmp;
  const std::string out = tmp.file("model.safetensors");
  io::convert_to_safetensors(kFixtures + "dtypes.bin", out);
  const io::SafetensorsFile f = io::load_safetensors(out);
  EXPECT_EQ(f.metadata.at("format"), "pt");
  expect_same(f, io::load_safetensors(kFixtures + "dtypes.safetensors"));
  EXPECT_EQ(f.order, io::load_pytorch_bin(kFixtures + "dtypes.bin").order);  // pickle order kept
  EXPECT_EQ(io::read_safetensors_header(out).entries.front().dtype, "F32");  // f16 -> float32
  EXPECT_EQ(tmp.list(), std::vector<std::string>{"model.safetensors"});
  // A failing conversion leaves no output behind.
  EXPECT_THROW(io::convert_to_safetensors(kFixtures + "evil_os_system.bin", tmp.file("x")), Error);
  EXPECT_EQ(tmp.list(), std::vector<std::string>{"model.safetensors"});
}

TEST(TorchBin, StateDictDispatchesOnMagic) {
  const io::StateDict bin = io::load_state_dict_file(kFixtures + "views.bin");
  EXPECT_EQ(bin.format, io::StateDictFormat::kTorchZip);
  const io::StateDict st = io::load_state_dict_file(kFixtures + "views.safetensors");
  EXPECT_EQ(st.format, io::StateDictFormat::kSafetensors);
  EXPECT_EQ(bin.order, split_words(st.metadata.at("order")));
  ASSERT_EQ(bin.tensors.size(), st.tensors.size());
  for (const auto& name : st.order)
    EXPECT_EQ(raw_bytes(bin.tensors.at(name)), raw_bytes(st.tensors.at(name))) << name;
  EXPECT_STREQ(io::state_dict_format_name(bin.format), "torch zip");

  TempDir tmp;
  const std::string p = tmp.file("weights.bin");
  write_bytes(p, "GARBAGE!!");
  EXPECT_TRUE(throws_error([&] { io::load_state_dict_file(p); },
                           {"[state_dict]", "unrecognised file format", "47 41 52"}));
  write_bytes(p, "");
  EXPECT_TRUE(throws_error([&] { io::load_state_dict_file(p); }, {"(empty file)"}));
  EXPECT_TRUE(throws_error([] { io::load_state_dict_file(kFixtures + "legacy.bin"); },
                           {"[state_dict]", "legacy"}));
  EXPECT_TRUE(throws_error([&] { io::load_state_dict_file(tmp.file("none")); }, {"cannot open"}));
}

// --- malicious pickles: refused, nothing executed ---

TEST(TorchPickle, MaliciousGlobalsRefusedAndNothingExecuted) {
  std::filesystem::remove(kPwnedMarker);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"evil_os_system.bin", "\"os.system\""},
      {"evil_eval.bin", "\"builtins.eval\""},
      {"evil_nested.bin", "\"posix.system\""},
      {"evil_load_from_bytes.bin", "\"torch.storage._load_from_bytes\""},
  };
  for (const auto& [file, global] : cases) {
    EXPECT_TRUE(throws_error([&] { io::load_pytorch_bin(kFixtures + file); },
                             {"[torch_pickle]", file, "refused global", global,
                              "nothing was imported or executed"}))
        << file;
    EXPECT_TRUE(throws_error([&] { io::load_state_dict_file(kFixtures + file); }, {global}));
  }
  EXPECT_FALSE(std::filesystem::exists(kPwnedMarker));
}

TEST(TorchPickle, CorruptFixturesGiveClearErrors) {
  EXPECT_TRUE(throws_error([] { io::load_pytorch_bin(kFixtures + "bad_unknown_opcode.bin"); },
                           {"refused opcode 0xff (unknown opcode) at byte 3",
                            "nothing was executed"}));
  EXPECT_TRUE(throws_error([] { io::load_pytorch_bin(kFixtures + "bad_truncated_pickle.bin"); },
                           {"[torch_pickle]", "data.pkl", "truncated"}));
  EXPECT_TRUE(throws_error([] { io::load_pytorch_bin(kFixtures + "bad_short_storage.bin"); },
                           {"[torch_pickle]", "float32/data/0", "expected 80 bytes, got 76"}));
  EXPECT_TRUE(throws_error([] { io::load_pytorch_bin(kFixtures + "bad_central_directory.bin"); },
                           {"[zip]", "corrupt central directory"}));
}

// --- hand-built archives ---

class HandPickle : public ::testing::Test {
 protected:
  TempDir tmp;
  std::string path = tmp.file("hand.bin");

  io::SafetensorsFile load(const std::string& pickle,
                           const std::vector<std::pair<std::string, std::string>>& storages = {},
                           const std::string& byteorder = "little") {
    std::filesystem::remove(path);  // truncating a just-written file can stall for ms (ext4)
    write_bytes(path, torch_zip(pickle, storages, byteorder));
    return io::load_pytorch_bin(path);
  }
  ::testing::AssertionResult fails(const std::string& pickle,
                                   const std::vector<std::string>& fragments,
                                   const std::vector<std::pair<std::string, std::string>>&
                                       storages = {}) {
    return throws_error([&] { load(pickle, storages); }, fragments);
  }
};

const std::string kSix = bytes_of(std::vector<float>{0, 1, 2, 3, 4, 5});

TEST_F(HandPickle, StridedOffsetViewOfSharedStorage) {
  const auto f = load(pk::state_dict({
                          {"t", pk::tensor("0", "FloatStorage", 6, 1, {2, 2}, {1, 3})},
                          {"row", pk::tensor("0", "FloatStorage", 6, 3, {3}, {1})},
                          {"bcast", pk::tensor("0", "FloatStorage", 6, 2, {2, 3}, {0, 0})},
                          {"empty", pk::tensor("0", "FloatStorage", 6, 6, {0}, {1})},
                      }),
                      {{"0", kSix}});
  EXPECT_EQ(f.order, (std::vector<std::string>{"t", "row", "bcast", "empty"}));
  EXPECT_EQ(f.tensors.at("t").to_vector(), (std::vector<float>{1, 4, 2, 5}));
  EXPECT_EQ(f.tensors.at("row").to_vector(), (std::vector<float>{3, 4, 5}));
  EXPECT_EQ(f.tensors.at("bcast").to_vector(), std::vector<float>(6, 2.0f));
  EXPECT_EQ(f.tensors.at("empty").numel(), 0);
}

// Protocol 4 opcodes, memo, OrderedDict + BUILD with ignored state, _rebuild_parameter.
TEST_F(HandPickle, ProtocolFourOpcodesAndParameters) {
  // memo 0 = collections.OrderedDict (STACK_GLOBAL, MEMOIZE), memo 1 = the result dict.
  const std::string head = std::string("\x80\x04\x95") + testing::le(0, 8) +
                           "\x8c\x0b" "collections" "\x8c\x0b" "OrderedDict" "\x93\x94" ")R\x94(";
  const std::string param = "\x8c\x01p" "ctorch._utils\n_rebuild_parameter\n(" +
                            pk::tensor("k_9", "IntStorage", 2, 0, {2}, {1}) + "\x88h\x00)RtR"s;
  // BUILD state {x: 1.5, y: None, z: True, l: [1, 258, 3], w: 5} (BINUNICODE8 key "w").
  const std::string state = std::string("}(\x8c\x01x" "G") +
                            std::string("\x3f\xf8\0\0\0\0\0\0", 8) + "\x8c\x01y" "N" "\x8c\x01z\x88" +
                            "\x8c\x01l" "](K\x01M\x02\x01" "eK\x03" "a" "\x8d" + testing::le(1, 8) +
                            "w" "K\x05" "u";
  const std::vector<std::pair<std::string, std::string>> storage = {
      {"k_9", bytes_of(std::vector<int32_t>{-5, 7})}};
  const auto f = load(head + param + "u" + state + "b.", storage);
  ASSERT_EQ(f.order, std::vector<std::string>{"p"});
  const Tensor& p = f.tensors.at("p");
  ASSERT_EQ(p.dtype(), DType::kI32);
  EXPECT_EQ(p.data<int32_t>()[0], -5);
  EXPECT_EQ(p.data<int32_t>()[1], 7);
  // A tuple value (BININT -1, empty LONG1) gives a clear "not a tensor" error.
  const std::string tuple_entry = "\x8c\x01q" "J\xff\xff\xff\xff" "\x8a\x00" "\x86"s;
  EXPECT_TRUE(fails(head + param + tuple_entry + "u" + state + "b.",
                    {"state dict entry \"q\" is a tuple, expected a tensor"}, storage));
}

TEST_F(HandPickle, DtypeRangeChecks) {
  EXPECT_TRUE(fails(pk::state_dict({{"big", pk::tensor("0", "LongStorage", 1, 0, {1}, {1})}}),
                    {"tensor \"big\" (LongStorage) holds 4294967296", "does not fit in int32"},
                    {{"0", bytes_of(std::vector<int64_t>{int64_t{1} << 32})}}));
  EXPECT_TRUE(fails(pk::state_dict({{"flag", pk::tensor("0", "BoolStorage", 2, 0, {2}, {1})}}),
                    {"tensor \"flag\" (BoolStorage) holds byte value 2"}, {{"0", "\x01\x02"}}));
  const auto f = load(pk::state_dict({{"c", pk::tensor("0", "CharStorage", 2, 0, {2}, {1})},
                                      {"d", pk::tensor("1", "DoubleStorage", 1, 0, {}, {})}}),
                      {{"0", "\xff\x7f"}, {"1", bytes_of(std::vector<double>{0.1})}});
  EXPECT_EQ(f.tensors.at("c").data<int32_t>()[0], -1);
  EXPECT_EQ(f.tensors.at("c").data<int32_t>()[1], 127);
  EXPECT_EQ(f.tensors.at("d").item(), 0.1f);
}

TEST_F(HandPickle, ViewBoundsAndShapeOverflow) {
  auto one = [](const std::string& t) { return pk::state_dict({{"w", t}}); };
  const std::vector<std::pair<std::string, std::string>> six = {{"0", kSix}};
  EXPECT_TRUE(fails(one(pk::tensor("0", "FloatStorage", 6, 4, {3}, {1})),
                    {"reach element 6 of storage \"0\", which holds 6 elements"}, six));
  EXPECT_TRUE(fails(one(pk::tensor("0", "FloatStorage", 6, 0, {2, 3}, {4, 1})),
                    {"reach element 6"}, six));
  EXPECT_TRUE(fails(one(pk::tensor("0", "FloatStorage", 6, 0, {4}, {int64_t{1} << 62})),
                    {"overflow 64 bits"}, six));
  EXPECT_TRUE(fails(one(pk::tensor("0", "FloatStorage", 6, 0, {int64_t{1} << 40, int64_t{1} << 40},
                                   {0, 0})),
                    {"overflow 64 bits"}, six));
  EXPECT_TRUE(fails(one(pk::tensor("0", "FloatStorage", 6, 0, {int64_t{1} << 40}, {0})),
                    {"repeats elements of storage \"0\" (6 elements)", "limit of 268435456"}, six));
  EXPECT_TRUE(fails(one(pk::tensor("0", "FloatStorage", 6, -1, {1}, {1})), {"negative"}, six));
  EXPECT_TRUE(fails(one(pk::tensor("0", "FloatStorage", 6, 0, {-2}, {1})),
                    {"non-negative ints (dim 0)"}, six));
  EXPECT_TRUE(fails(one(pk::tensor("0", "FloatStorage", 6, 0, {2}, {-1})),
                    {"non-negative ints"}, six));
  EXPECT_TRUE(fails(one(pk::tensor("0", "FloatStorage", 6, 0, {2, 3}, {1})),
                    {"size has 2 dims and stride 1"}, six));
  EXPECT_TRUE(fails(one(pk::tensor("0", "FloatStorage", int64_t{1} << 62, 0, {1}, {1})),
                    {"overflows its byte count"}, six));
  EXPECT_TRUE(fails(one(pk::tensor("0", "FloatStorage", 5, 0, {5}, {1})),
                    {"expected 20 bytes, got 24"}, six));
  EXPECT_TRUE(fails(one(pk::tensor("7", "FloatStorage", 6, 0, {5}, {1})),
                    {"needs storage entry \"archive/data/7\", which is missing"}, six));
  EXPECT_TRUE(fails(one(pk::tensor("../x", "FloatStorage", 6, 0, {5}, {1})),
                    {"storage key \"../x\""}, six));
  EXPECT_TRUE(fails(pk::state_dict({{"a", pk::tensor("0", "FloatStorage", 6, 0, {1}, {1})},
                                    {"b", pk::tensor("0", "IntStorage", 6, 0, {1}, {1})}}),
                    {"storage \"0\" is referenced as FloatStorage", "IntStorage"}, six));
  EXPECT_TRUE(fails(pk::state_dict({{"a", pk::tensor("0", "FloatStorage", 6, 0, {1}, {1})},
                                    {"a", pk::tensor("0", "FloatStorage", 6, 1, {1}, {1})}}),
                    {"duplicate tensor name \"a\""}, six));
}

TEST_F(HandPickle, RefusedGlobalsAndCallables) {
  const std::string p2 = pk::proto2();
  EXPECT_TRUE(fails(p2 + "cbuiltins\nexec\n.", {"refused global \"builtins.exec\""}));
  EXPECT_TRUE(fails(p2 + "ctorch\nload\n.", {"refused global \"torch.load\""}));
  EXPECT_TRUE(fails(p2 + "c__builtin__\ngetattr\n.", {"refused global \"__builtin__.getattr\""}));
  EXPECT_TRUE(fails(p2 + "ctorch\nFloatStorage\n)R.", {"torch.FloatStorage cannot be called"}));
  EXPECT_TRUE(fails(p2 + "ccollections\nOrderedDict\nK\x01\x85R.",
                    {"OrderedDict expects no arguments"}));
  EXPECT_TRUE(fails(p2 + "))R.", {"REDUCE applies a tuple"}));
  EXPECT_TRUE(fails(p2 + "ccollections\nOrderedDict\nK\x01R.", {"arguments must be a tuple"}));
  EXPECT_TRUE(fails(p2 + "}}b.", {"BUILD is only supported on a collections.OrderedDict"}));
  EXPECT_TRUE(fails(p2 + "ccollections\nOrderedDict\n)RK\x01" "b.", {"state must be None or a dict"}));
  EXPECT_TRUE(fails(p2 + "(X\x07\0\0\0storageccollections\nOrderedDict\nX\x01\0\0\0" "0X\x03\0\0\0cpuK\x01tQ."s,
                    {"must be a torch.<X>Storage class"}));
  EXPECT_TRUE(fails(p2 + "K\x01Q.", {"persistent id must be"}));
  EXPECT_TRUE(fails(p2 + "\x8c\x02os\x8c\x06system\x93.", {"refused global \"os.system\""}));
  EXPECT_TRUE(fails(p2 + "K\x01\x8c\x06system\x93.", {"STACK_GLOBAL needs two strings"}));
  for (const char op : std::string("io0125FILPSTUVBCdglp\x81\x82\x8b\x8e\x8f\x90\x91\x92\x96\x97\x98")) {
    const std::string refused = p2 + std::string(1, op) + ".";
    EXPECT_TRUE(fails(refused, {"refused opcode 0x", "at byte 2", "nothing was executed"}))
        << int(static_cast<uint8_t>(op));
  }
  EXPECT_TRUE(fails(p2 + "i", {"refused opcode 0x69 (INST)"}));
}

TEST_F(HandPickle, MalformedPicklesGiveClearErrors) {
  const std::string p2 = pk::proto2();
  EXPECT_TRUE(fails("", {"ends at byte 0 without a STOP"}));
  EXPECT_TRUE(fails(p2 + "}", {"truncated", "without a STOP"}));
  EXPECT_TRUE(fails(p2 + "X\xff\xff\xff\x7f" "abc", {"truncated: needs 2147483647 more bytes"}));
  EXPECT_TRUE(fails(p2 + "J\x01", {"truncated: needs 4 more bytes, only 1 left"}));
  EXPECT_TRUE(fails(p2 + "cos\nsys", {"truncated inside a GLOBAL name"}));
  EXPECT_TRUE(fails(p2 + "c" + std::string(300, 'a') + "\n", {"longer than 256"}));
  EXPECT_TRUE(fails("\x80\x06}.", {"unsupported pickle protocol 6"}));
  EXPECT_TRUE(fails(p2 + "\x95" + testing::le(100, 8) + "}.", {"frame of 100 bytes"}));
  EXPECT_TRUE(fails(p2 + ".", {"stack underflow", "0x2e (STOP)"}));
  EXPECT_TRUE(fails(p2 + "R.", {"stack underflow"}));
  EXPECT_TRUE(fails(p2 + "K\x01(.", {"stack underflow"}));  // a MARK hides what is below it
  EXPECT_TRUE(fails(p2 + "t.", {"no MARK to pop to"}));
  EXPECT_TRUE(fails(p2 + "h\x07.", {"memo index 7 was never stored"}));
  EXPECT_TRUE(fails(p2 + "j\x00\x00\x00\x80."s, {"memo index 2147483648"}));
  EXPECT_TRUE(fails(p2 + "q\x00."s, {"memo put with nothing on the stack"}));
  EXPECT_TRUE(fails(p2 + "K\x01K\x02K\x03s.", {"expected a dict on the stack, got a int"}));
  EXPECT_TRUE(fails(p2 + "}(K\x01u.", {"SETITEMS needs key/value pairs"}));
  EXPECT_TRUE(fails(p2 + "K\x01.", {"expected the pickle to hold a dict", "got a int"}));
  EXPECT_TRUE(fails(p2 + "}K\x01K\x02s.", {"state dict key 0 is a int, expected str"}));
  EXPECT_TRUE(fails(p2 + "}X\x01\0\0\0aK\x02s."s, {"entry \"a\" is a int, expected a tensor"}));
  EXPECT_TRUE(fails(p2 + "\x8a\x09" + std::string(9, '\0') + ".", {"9 bytes does not fit"}));
  // Recursive and deeply nested structures.
  EXPECT_TRUE(fails(p2 + "]q\x00h\x00" "a."s, {"a list contains itself"}));
  EXPECT_TRUE(fails(p2 + "]q\x00]q\x01h\x00" "a" "h\x00h\x01" "a."s,
                    {"modifies a list already placed inside another object"}));
  EXPECT_TRUE(fails(p2 + std::string(100, ']') + std::string(99, 'a') + ".",
                    {"nest deeper than the limit of 64"}));
  EXPECT_TRUE(fails(p2 + std::string(70000, '('), {"more than 65536 nested MARKs"}));
  std::string many = p2 + "Nq\x00"s;  // one memoized None pushed over a million times
  for (int i = 0; i < (1 << 20); ++i) many += "h\x00"s;
  EXPECT_TRUE(fails(many, {"stack exceeds 1048576 entries"}));
}

TEST_F(HandPickle, ArchiveLayoutChecks) {
  const std::string sd = pk::state_dict({{"w", pk::tensor("0", "FloatStorage", 6, 0, {6}, {1})}});
  EXPECT_TRUE(throws_error([&] { load(sd, {{"0", kSix}}, "big"); },
                           {"byteorder is \"big\", expected \"little\""}));
  write_bytes(path, testing::zip_stored({{"data.pkl", sd}}));
  EXPECT_TRUE(throws_error([&] { io::load_pytorch_bin(path); },
                           {"expected exactly one <archive>/data.pkl", "found 0"}));
  write_bytes(path, testing::zip_stored({{"a/data.pkl", sd}, {"b/data.pkl", sd}}));
  EXPECT_TRUE(throws_error([&] { io::load_pytorch_bin(path); }, {"found 2"}));
  EXPECT_EQ(load(sd, {{"0", kSix}}).tensors.at("w").to_vector(),
            (std::vector<float>{0, 1, 2, 3, 4, 5}));
}

// Every single-byte change of a real data.pkl (repackaged with a valid CRC) and every
// truncation either loads or throws Error: the unpickler never crashes or hangs.
TEST_F(HandPickle, MutatedRealPicklesNeverCrash) {
  const io::ZipReader zip(kFixtures + "views.bin");
  std::vector<std::pair<std::string, std::string>> storages;
  std::string pickle;
  for (const auto& e : zip.entries()) {
    const size_t slash = e.name.find("/data/");
    if (slash != std::string::npos) storages.emplace_back(e.name.substr(slash + 6), zip.read(e));
    if (e.name.size() > 9 && e.name.substr(e.name.size() - 9) == "/data.pkl") pickle = zip.read(e);
  }
  ASSERT_FALSE(pickle.empty());
  EXPECT_EQ(load(pickle, storages).order.size(), 8u);
  int loaded = 0, refused = 0;
  for (size_t i = 0; i < pickle.size(); ++i) {
    for (const uint8_t x : {0x01, 0x80, 0xff}) {
      std::string bad = pickle;
      bad[i] = static_cast<char>(bad[i] ^ x);
      try {
        load(bad, storages);
        ++loaded;
      } catch (const Error& e) {
        ++refused;
        EXPECT_EQ(std::string(e.what()).rfind("[torch_pickle]", 0), 0u) << "byte " << i << ": " << e.what();
      }
    }
    if (i % 5 == 0)
      EXPECT_TRUE(throws_error([&] { load(pickle.substr(0, i), storages); }, {"[torch_pickle]"}));
  }
  // both outcomes occur: flips in opcodes are refused, flips inside names and constants load
  EXPECT_GT(refused, 0);
  EXPECT_GT(loaded, 0);
}

}  // namespace
}  // namespace perceiver
