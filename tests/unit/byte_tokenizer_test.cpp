// The byte tokenizer against the HF reference cases (tests/data/hf/preprocessing/
// perceiver_tokenizer.json): ids, attention masks and the four decode variants, compared exactly.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "perceiver/core/error.h"
#include "perceiver/data/byte_tokenizer.h"

namespace perceiver::data {
namespace {

nlohmann::json load_cases() {
  const std::string path = std::string(PERCEIVER_SOURCE_DIR) + "/tests/data/hf/preprocessing/perceiver_tokenizer.json";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in);
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

TEST(ByteTokenizer, MatchesEveryReferenceCaseExactly) {
  const nlohmann::json j = load_cases();
  const int64_t max_length = j.at("call").at("max_length").get<int64_t>();
  ASSERT_EQ(j.at("cases").size(), 13u);
  for (const nlohmann::json& c : j.at("cases")) {
    const std::string name = c.at("name");
    const std::string text = from_hex(c.at("text_utf8_hex"));
    ASSERT_EQ(text, c.at("text").get<std::string>()) << name;
    const ByteEncoding e = encode_bytes(text, max_length);
    EXPECT_EQ(e.input_ids, c.at("input_ids").get<std::vector<int32_t>>()) << name;
    EXPECT_EQ(e.attention_mask, c.at("attention_mask").get<std::vector<int32_t>>()) << name;
    EXPECT_EQ(e.num_tokens, c.at("num_tokens").get<int64_t>()) << name;
    EXPECT_EQ(e.truncated, c.at("truncated").get<bool>()) << name;

    const std::vector<int32_t> real(e.input_ids.begin(), e.input_ids.begin() + e.num_tokens);
    EXPECT_EQ(decode_bytes(real), c.at("decode").get<std::string>()) << name;
    EXPECT_EQ(decode_bytes(real, {false, false}), c.at("decode_no_cleanup").get<std::string>()) << name;
    EXPECT_EQ(decode_bytes(e.input_ids, {true, true}), c.at("decode_skip_special_tokens").get<std::string>()) << name;
    const std::string plain = decode_bytes(e.input_ids, {true, false});
    EXPECT_EQ(plain, c.at("decode_skip_special_tokens_no_cleanup").get<std::string>()) << name;
    EXPECT_EQ(plain == text, c.at("round_trip_exact").get<bool>()) << name;
  }
}

TEST(ByteTokenizer, SpecialStringsAreExactAndCaseSensitive) {
  EXPECT_EQ(tokenize_bytes("[MASK][mask][MASK "),
            (std::vector<int32_t>{3, '[' + 6, 'm' + 6, 'a' + 6, 's' + 6, 'k' + 6, ']' + 6, '[' + 6, 'M' + 6, 'A' + 6,
                                  'S' + 6, 'K' + 6, ' ' + 6}));
  EXPECT_EQ(tokenize_bytes("[PAD][BOS][EOS][CLS][SEP]"), (std::vector<int32_t>{0, 1, 2, 4, 5}));
}

TEST(ByteTokenizer, UnpaddedEncodingAndShortMaxLength) {
  ByteEncoding e = encode_bytes("abc", 4, false);
  EXPECT_EQ(e.input_ids, (std::vector<int32_t>{4, 'a' + 6, 'b' + 6, 5}));
  EXPECT_TRUE(e.truncated);
  e = encode_bytes("", 2, true);
  EXPECT_EQ(e.input_ids, (std::vector<int32_t>{4, 5}));
  EXPECT_THROW(encode_bytes("x", 1), Error);
}

TEST(ByteTokenizer, Utf8ReplacementFollowsPython) {
  // One U+FFFD per maximal invalid subsequence (Python errors="replace").
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8_replace_invalid("a\xC3"), "a" + r);
  EXPECT_EQ(utf8_replace_invalid("\xE2\x82x"), r + "x");           // truncated 3-byte sequence
  EXPECT_EQ(utf8_replace_invalid("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(utf8_replace_invalid("\xED\xA0\x80"), r + r + r);     // surrogates are invalid
  EXPECT_EQ(utf8_replace_invalid("\xC0\xAF"), r + r);             // overlong
  EXPECT_EQ(utf8_replace_invalid("\xF5\x80"), r + r);
  EXPECT_EQ(utf8_replace_invalid("\xE0\x80\x80"), r + r + r);
}

TEST(ByteTokenizer, DecodeRejectsOutOfRangeIds) {
  EXPECT_THROW(decode_bytes({4, 262}), Error);
  EXPECT_THROW(decode_bytes({-1}), Error);
  EXPECT_THROW(special_token_string(6), Error);
  EXPECT_STREQ(special_token_string(3), "[MASK]");
}

}  // namespace
}  // namespace perceiver::data
