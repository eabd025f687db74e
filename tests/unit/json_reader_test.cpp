// The one JSON reader: bounded parsing (depth, size, number overflow) without recursion, errors
// naming the file and key path, conversions without undefined behaviour, float32 validation,
// strict and lenient objects.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <limits>
#include <string>

#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"

namespace perceiver {
namespace {

using nlohmann::json;

std::string parse_error(const std::string& text, const JsonLimits& limits = {}) {
  try {
    parse_json(text, "t.json", "config", limits);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_contains(const std::string& msg, const std::string& part) {
  EXPECT_NE(msg.find(part), std::string::npos) << "'" << part << "' not in: " << msg;
}

TEST(JsonReader, DeepNestingIsAnErrorNotAStackOverflow) {
  // 100,000 levels would overflow the stack of any recursive parser, copy or dump.
  for (const std::string open : {"[", "{\"a\":"}) {
    std::string text;
    for (int i = 0; i < 100000; ++i) text += open;
    const std::string msg = parse_error(text);
    expect_contains(msg, "[config] t.json: ");
    expect_contains(msg, "nesting deeper than 64 levels");
  }
  std::string ok, bad;
  for (int i = 0; i < 64; ++i) ok = "[" + ok + "]";
  EXPECT_NO_THROW(parse_json(ok, "t.json"));
  bad = "[" + ok + "]";
  expect_contains(parse_error(bad), "nesting deeper than 64");
  JsonLimits shallow;
  shallow.max_depth = 2;
  expect_contains(parse_error(R"({"model": {"x": [1]}})", shallow), "model.x: JSON nesting deeper than 2");
}

TEST(JsonReader, NumberOverflowNamesTheKey) {
  const std::string msg = parse_error(R"({"model": {"num_latents": 1e400}})");
  expect_contains(msg, "[config] t.json: model.num_latents: ");
  expect_contains(msg, "1e400");
  expect_contains(msg, "outside the range of a double");
  expect_contains(parse_error(R"({"list": [1, 2, -1e999]})"), "list[2]: ");
  // Integers too large for 64 bits become finite doubles: not a parse error (a range error later).
  EXPECT_TRUE(parse_json("123456789012345678901234567890", "t").is_number_float());
}

TEST(JsonReader, SyntaxErrorsAndSizeLimit) {
  expect_contains(parse_error(R"({"a": 1,})"), "[config] t.json: invalid JSON: ");
  expect_contains(parse_error(""), "invalid JSON");
  JsonLimits small;
  small.max_bytes = 8;
  expect_contains(parse_error(R"({"a": 12345})", small), "exceeds the limit of 8 bytes");
  const std::string path = ::testing::TempDir() + "/json_reader_big.json";
  std::ofstream(path) << R"({"a": 12345})";
  try {
    read_json_file(path, "hf_config", small);
    ADD_FAILURE() << "expected a size error";
  } catch (const Error& e) {
    expect_contains(e.what(), "[hf_config] " + path + ": file of 12 bytes exceeds the limit");
  }
  std::remove(path.c_str());
  try {
    read_json_file(path + ".missing");
    ADD_FAILURE();
  } catch (const Error& e) {
    expect_contains(e.what(), "cannot open file");
  }
}

TEST(JsonReader, IntegersConvertWithoutUndefinedBehaviour) {
  int64_t x = 0;
  EXPECT_TRUE(json_to_int(json(3.0), 0, 10, x));
  EXPECT_EQ(x, 3);
  EXPECT_TRUE(json_to_int(json(-0.0), 0, 10, x));
  EXPECT_EQ(x, 0);
  EXPECT_FALSE(json_to_int(json(3.5), 0, 10, x));
  EXPECT_FALSE(json_to_int(json(1e30), 0, INT64_MAX, x));                    // the UBSan reproducer
  EXPECT_FALSE(json_to_int(json(9223372036854775808.0), INT64_MIN, INT64_MAX, x));  // 2^63
  EXPECT_TRUE(json_to_int(json(-9223372036854775808.0), INT64_MIN, INT64_MAX, x));
  EXPECT_EQ(x, INT64_MIN);
  EXPECT_FALSE(json_to_int(json(std::numeric_limits<uint64_t>::max()), INT64_MIN, INT64_MAX, x));
  EXPECT_TRUE(json_to_int(json(uint64_t(INT64_MAX)), 0, INT64_MAX, x));
  EXPECT_FALSE(json_to_int(json(uint64_t(5)), -10, -1, x));
  EXPECT_FALSE(json_to_int(json("3"), 0, 10, x));
  EXPECT_FALSE(json_to_int(json(true), 0, 10, x));

  const json j = parse_json(R"({"n": 1e30, "m": 4.0, "k": -3})", "t.json");
  JsonObject o(j, "model");
  EXPECT_EQ(o.get_int("m", 0, 1, 8), 4);
  try {
    o.get_int("n", 0, 1, 1 << 20);
    ADD_FAILURE();
  } catch (const Error& e) {
    expect_contains(e.what(), "[config] model.n: expected an integer in [1, 1048576], got 1e+30");
  }
  EXPECT_THROW(o.get_int("k", 0, 0, 8), Error);
}

TEST(JsonReader, FloatFieldsValidateInFloatPrecision) {
  // 0.99 stored as float32 is 0.9900000095367432 in double: a float field must accept what it
  // wrote itself at the end of its range.
  const float stored = 0.99f;
  const json j = parse_json(json{{"dropout", stored}}.dump(), "t");
  EXPECT_GT(j.at("dropout").get<double>(), 0.99);
  JsonObject o(j, "model");
  EXPECT_EQ(o.get_float("dropout", 0.0f, 0.0, 0.99), stored);
  const json over = json{{"dropout", 0.991}, {"huge", 1e300}};
  JsonObject o2(over, "model");
  EXPECT_THROW(o2.get_float("dropout", 0.0f, 0.0, 0.99), Error);
  EXPECT_THROW(o2.get_float("huge", 0.0f, 0.0, 1e39), Error);  // beyond float: an error, not a cast
}

TEST(JsonReader, StrictAndLenientObjects) {
  const json j = {{"a", 1}, {"typo", 2}, {"nested", {{"b", nullptr}}}};
  JsonObject strict(j, "model");
  EXPECT_EQ(strict.get_int("a", 0, 0, 9), 1);
  JsonObject nested = strict.get_object("nested");
  EXPECT_EQ(nested.get_int("b", 7, 0, 9), 7);  // null counts as absent
  nested.finish();
  try {
    strict.finish();
    ADD_FAILURE();
  } catch (const Error& e) {
    expect_contains(e.what(), "[config] model: unknown key 'typo'; allowed keys: a nested");
  }
  JsonObject lenient(j, JsonObject::Mode::kLenient, "hf_config", "dir/config.json");
  EXPECT_EQ(lenient.get_int("a", 0, 0, 9), 1);
  EXPECT_NO_THROW(lenient.finish());
  try {
    lenient.get_string("a", "", {"x", "y"});
    ADD_FAILURE();
  } catch (const Error& e) {
    expect_contains(e.what(), "[hf_config] dir/config.json: a: expected one of \"x\", \"y\", got 1");
  }
  EXPECT_THROW(JsonObject(json::array(), "model"), Error);
}

TEST(JsonReader, LabelsAndPairs) {
  const json j = parse_json(R"({"id2label": {"1": "b", "0": "a"}, "bad": {"0": "a", "00": "b"},
                                "gap": {"0": "a", "2": "c"}, "s": 7, "p": [3, 4], "q": [3]})", "t");
  JsonObject o(j, JsonObject::Mode::kLenient, "vit_config", "t");
  EXPECT_EQ(o.get_labels("id2label", {}), (std::vector<std::string>{"a", "b"}));
  EXPECT_THROW(o.get_labels("bad", {}), Error);
  EXPECT_THROW(o.get_labels("gap", {}), Error);
  EXPECT_EQ(o.get_int_or_pair("s", {}, 1, 9), (std::vector<int64_t>{7, 7}));
  EXPECT_EQ(o.get_int_or_pair("p", {}, 1, 9), (std::vector<int64_t>{3, 4}));
  EXPECT_THROW(o.get_int_or_pair("q", {}, 1, 9), Error);
}

TEST(JsonReader, FloatLists) {
  const json j = parse_json(R"({"s": [0.9, 1.1], "bad": [0.9, "x"], "far": [3.0], "long": [1, 1, 1]})", "t");
  JsonObject o(j, "data");
  EXPECT_EQ(o.get_float_list("s", {}, 0.5, 2.0, 0, 2), (std::vector<float>{0.9f, 1.1f}));
  EXPECT_EQ(o.get_float_list("absent", {1.0f}, 0.5, 2.0, 0, 2), (std::vector<float>{1.0f}));
  EXPECT_THROW(o.get_float_list("bad", {}, 0.5, 2.0, 0, 2), Error);
  EXPECT_THROW(o.get_float_list("far", {}, 0.5, 2.0, 0, 2), Error);
  EXPECT_THROW(o.get_float_list("long", {}, 0.5, 2.0, 0, 2), Error);
}

TEST(JsonReader, StringLists) {
  const json j = parse_json(R"({"e": [".txt", ".rst.gz"], "empty": [""], "num": [".txt", 3], "one": ".txt"})", "t");
  JsonObject o(j, "data");
  EXPECT_EQ(o.get_string_list("e", {}, 0, 8), (std::vector<std::string>{".txt", ".rst.gz"}));
  EXPECT_EQ(o.get_string_list("absent", {"x"}, 0, 8), (std::vector<std::string>{"x"}));
  for (const char* key : {"empty", "num", "one"}) {
    try {
      o.get_string_list(key, {}, 0, 8);
      ADD_FAILURE() << key;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("data.") + key + ": expected a list of 0 to 8 non-empty strings"),
                std::string::npos) << e.what();
    }
  }
}

TEST(JsonReader, ShownValuesAreBounded) {
  json big = json::array();
  for (int i = 0; i < 100000; ++i) big.push_back(i);
  EXPECT_EQ(json_shown(big), "[an array of 100000 values]");
  EXPECT_LE(json_shown(json(std::string(1000, 'x'))).size(), 80u);
}

}  // namespace
}  // namespace perceiver
