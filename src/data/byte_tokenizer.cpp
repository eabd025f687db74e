// Byte-level Perceiver tokenizer: encoding with special-token recognition, truncation and
// padding; decoding with Python-compatible UTF-8 replacement and HF's space cleanup.
#include "perceiver/data/byte_tokenizer.h"

#include <array>
#include <utility>

#include "perceiver/core/error.h"

namespace perceiver::data {
namespace {

constexpr std::array<std::string_view, 6> kSpecials = {"[PAD]", "[BOS]", "[EOS]", "[MASK]", "[CLS]", "[SEP]"};

// Expected range of the second byte of a multi-byte UTF-8 sequence led by `lead` (Unicode
// table 3-7); later bytes are always 0x80..0xBF. Returns the sequence length, 0 if invalid.
int utf8_sequence(unsigned char lead, unsigned char& lo, unsigned char& hi) {
  lo = 0x80;
  hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead == 0xE0) { lo = 0xA0; return 3; }
  if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) return 3;
  if (lead == 0xED) { hi = 0x9F; return 3; }
  if (lead == 0xF0) { lo = 0x90; return 4; }
  if (lead >= 0xF1 && lead <= 0xF3) return 4;
  if (lead == 0xF4) { hi = 0x8F; return 4; }
  return 0;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out.append(to);
  }
  out.append(s, pos, std::string::npos);
  s = std::move(out);
}

}  // namespace

const char* special_token_string(int32_t id) {
  check(id >= 0 && id < static_cast<int32_t>(kSpecials.size()), "[byte_tokenizer] special token id must be in [0, ",
        kSpecials.size(), "), got ", id);
  return kSpecials[static_cast<size_t>(id)].data();
}

std::vector<int32_t> tokenize_bytes(std::string_view text) {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    bool special = false;
    if (text[i] == '[') {
      for (size_t k = 0; k < kSpecials.size() && !special; ++k)
        if (text.compare(i, kSpecials[k].size(), kSpecials[k]) == 0) {
          ids.push_back(static_cast<int32_t>(k));
          i += kSpecials[k].size();
          special = true;
        }
    }
    if (!special) ids.push_back(static_cast<unsigned char>(text[i++]) + byte_tokens::kByteOffset);
  }
  return ids;
}

ByteEncoding encode_bytes(std::string_view text, int64_t max_length, bool pad) {
  check(max_length >= 2, "[byte_tokenizer] max_length must be >= 2 ([CLS] and [SEP]), got ", max_length);
  std::vector<int32_t> content = tokenize_bytes(text);
  ByteEncoding e;
  const size_t room = static_cast<size_t>(max_length - 2);
  e.truncated = content.size() > room;
  if (e.truncated) content.resize(room);
  e.input_ids.reserve(pad ? static_cast<size_t>(max_length) : content.size() + 2);
  e.input_ids.push_back(byte_tokens::kCls);
  e.input_ids.insert(e.input_ids.end(), content.begin(), content.end());
  e.input_ids.push_back(byte_tokens::kSep);
  e.num_tokens = static_cast<int64_t>(e.input_ids.size());
  e.attention_mask.assign(e.input_ids.size(), 1);
  if (pad) {
    e.input_ids.resize(static_cast<size_t>(max_length), byte_tokens::kPad);
    e.attention_mask.resize(static_cast<size_t>(max_length), 0);
  }
  return e;
}

std::string utf8_replace_invalid(std::string_view bytes) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(bytes.size());
  const size_t n = bytes.size();
  for (size_t i = 0; i < n;) {
    const auto lead = static_cast<unsigned char>(bytes[i]);
    if (lead < 0x80) {
      out.push_back(static_cast<char>(lead));
      ++i;
      continue;
    }
    unsigned char lo = 0, hi = 0;
    const int len = utf8_sequence(lead, lo, hi);
    // Consume the longest valid prefix; a broken or short sequence is one U+FFFD.
    size_t k = 1;
    for (; len > 0 && k < static_cast<size_t>(len) && i + k < n; ++k) {
      const auto b = static_cast<unsigned char>(bytes[i + k]);
      const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
      if (b < l || b > h) break;
    }
    if (len > 0 && k == static_cast<size_t>(len)) {
      out.append(bytes.substr(i, k));
    } else {
      out.append(kReplacement);
    }
    i += k;
  }
  return out;
}

std::string clean_up_tokenization(std::string text) {
  static constexpr std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},     {" ?", "?"},     {" !", "!"},     {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"},   {" 's", "'s"},   {" 've", "'ve"}, {" 're", "'re"},
  };
  for (const auto& [from, to] : kRules) replace_all(text, from, to);
  return text;
}

std::string decode_bytes(const std::vector<int32_t>& ids, const ByteDecodeOptions& options) {
  std::string bytes;
  bytes.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    check(id >= 0 && id < byte_tokens::kVocabSize, "[byte_tokenizer] decode: id at position ", i,
          " must be in [0, ", byte_tokens::kVocabSize, "), got ", id);
    if (id >= byte_tokens::kByteOffset)
      bytes.push_back(static_cast<char>(id - byte_tokens::kByteOffset));
    else if (!options.skip_special_tokens)
      bytes.append(kSpecials[static_cast<size_t>(id)]);
  }
  std::string text = utf8_replace_invalid(bytes);
  return options.clean_up_tokenization_spaces ? clean_up_tokenization(std::move(text)) : text;
}

}  // namespace perceiver::data
