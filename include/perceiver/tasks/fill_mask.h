// Filling masked bytes with the language Perceiver (PerceiverForMaskedLM), for every front end
// (the `fill-mask` command, the Python module, the HTTP server). The text is tokenised with the
// byte tokenizer; every literal "[MASK]" becomes one mask token (one byte to predict), and each
// span [begin, end) of the text's bytes is replaced by mask tokens, as the upstream example does.
// The sequence is padded to max_position_embeddings with an attention mask, as in upstream;
// only the masked positions are decoded. Each mask gets the most likely byte (special tokens are
// not text).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "perceiver/models/perceiver_io/perceiver_io.h"

namespace perceiver::tasks {

struct ByteSpan {
  int64_t begin = 0, end = 0;  // byte offsets into the text, [begin, end)
};

struct TokenScore {
  int32_t id = 0;       // token id (bytes are id - 6, data/byte_tokenizer.h)
  std::string text;     // printable ASCII as itself, other bytes as \xHH, special tokens by name
  float probability = 0;
};

struct FilledMask {
  std::string text;                             // the text with every mask filled (UTF-8, invalid as U+FFFD)
  std::vector<int64_t> positions;               // the masked token positions (0 is [CLS])
  std::vector<std::vector<TokenScore>> top;     // per position, the top-k tokens (when top > 0)
  Tensor logits;                                // (1, positions, vocab)
};

// "START:END" -> a span of the text's bytes; an error naming `flag` otherwise.
ByteSpan parse_byte_span(const std::string& s, int64_t text_bytes, const std::string& flag = "--mask");

// Content tokens of the text with the spans replaced by mask tokens (a span must not cut
// through a special-token string such as "[MASK]").
std::vector<int32_t> masked_content(const std::string& text, const std::vector<ByteSpan>& spans);

// Fills the masks of `content` (from masked_content) with `model`; top > 0 also ranks the k most
// likely tokens of every position. An error when nothing is masked or the text is too long.
// Non-finite logits are an error unless allow_nonfinite.
FilledMask fill_mask(const models::perceiver_io::PerceiverIO& model, const std::vector<int32_t>& content, int64_t top = 0,
                     bool allow_nonfinite = false, const std::string& command = "fill-mask");

}  // namespace perceiver::tasks
