// The byte-level PerceiverTokenizer of deepmind/language-perceiver (spec 5.5; fixtures
// preprocessing/README.md section 1): ids 0..5 are [PAD] [BOS] [EOS] [MASK] [CLS] [SEP], byte b
// is id b + 6 (vocabulary 262). Special-token strings in the text become their ids; every other
// byte becomes its own id. A sequence is wrapped as [CLS] ... [SEP], its content cut from the
// right to max_length - 2 ids, and padded on the right with [PAD] (attention mask 0).
// Decoding follows HF v4.19: special ids as their strings (or dropped), bytes decoded as UTF-8
// with Python's errors="replace", then the optional clean_up_tokenization_spaces rewrites.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace perceiver::data {

namespace byte_tokens {
constexpr int32_t kPad = 0, kBos = 1, kEos = 2, kMask = 3, kCls = 4, kSep = 5;
constexpr int32_t kByteOffset = 6;
constexpr int32_t kVocabSize = 262;
constexpr int64_t kModelMaxLength = 2048;
}  // namespace byte_tokens

// "[PAD]" ... "[SEP]" for ids 0..5; an Error for any other id.
const char* special_token_string(int32_t id);

struct ByteEncoding {
  std::vector<int32_t> input_ids;       // [CLS] content [SEP] [PAD]...
  std::vector<int32_t> attention_mask;  // 1 for real tokens (incl. [CLS]/[SEP]), 0 for padding
  int64_t num_tokens = 0;               // ids that are not padding
  bool truncated = false;               // the content was cut to max_length - 2 ids
};

// The content ids of a text (no [CLS]/[SEP]): special-token strings (exact, case-sensitive)
// become their ids, every other byte b becomes b + 6.
std::vector<int32_t> tokenize_bytes(std::string_view text);

// HF tokenizer(text, truncation=True, max_length, padding="max_length" if pad else none).
// max_length must be >= 2.
ByteEncoding encode_bytes(std::string_view text, int64_t max_length = byte_tokens::kModelMaxLength,
                          bool pad = true);

struct ByteDecodeOptions {
  bool skip_special_tokens = false;          // drop ids 0..5 (padding included)
  bool clean_up_tokenization_spaces = true;  // the HF v4.19 default
};

// HF tokenizer.decode(ids, ...). Ids outside [0, 262) are an Error.
std::string decode_bytes(const std::vector<int32_t>& ids, const ByteDecodeOptions& options = {});

// Bytes as UTF-8 with every maximal invalid subsequence replaced by U+FFFD (Python's
// bytes.decode("utf-8", errors="replace")).
std::string utf8_replace_invalid(std::string_view bytes);

// HF clean_up_tokenization: " ." -> "." , " ?" , " !" , " ," , " ' " -> "'", " n't", " 'm",
// " 's", " 've", " 're", applied globally in that order.
std::string clean_up_tokenization(std::string text);

}  // namespace perceiver::data
