// Masked-byte filling with the language Perceiver (see tasks/fill_mask.h).
#include "perceiver/tasks/fill_mask.h"

#include <cstdio>
#include <cstring>

#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/error.h"
#include "perceiver/data/byte_tokenizer.h"
#include "perceiver/ops/activation.h"
#include "perceiver/tasks/common.h"

namespace perceiver::tasks {
namespace {

namespace pio = models::perceiver_io;
namespace bt = data::byte_tokens;

// A token for display: printable ASCII as itself, any other byte as \xHH, special tokens by name.
std::string show_token(int32_t id) {
  if (id < bt::kByteOffset) return data::special_token_string(id);
  const int b = id - bt::kByteOffset;
  char buf[16];
  if (b >= 0x20 && b < 0x7F) std::snprintf(buf, sizeof buf, "%c", b);
  else std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned>(b) & 0xFFu);
  return buf;
}

}  // namespace

ByteSpan parse_byte_span(const std::string& s, int64_t text_bytes, const std::string& flag) {
  const size_t colon = s.find(':');
  int64_t b = -1, e = -1;
  try {
    size_t nb = 0, ne = 0;
    if (colon != std::string::npos && colon > 0 && colon + 1 < s.size()) {
      b = std::stoll(s.substr(0, colon), &nb);
      e = std::stoll(s.substr(colon + 1), &ne);
    }
    if (nb != colon || ne != s.size() - colon - 1) b = e = -1;
  } catch (const std::exception&) {
    b = e = -1;
  }
  check(b >= 0 && e >= 0, "[fill-mask] ", flag, ": expected START:END byte offsets (e.g. 51:60), got '", s, "'");
  check(b < e && e <= text_bytes, "[fill-mask] ", flag, " ", s, ": expected 0 <= START < END <= ", text_bytes,
        " (the text's length in bytes), got ", b, ":", e);
  return {b, e};
}

std::vector<int32_t> masked_content(const std::string& text, const std::vector<ByteSpan>& spans) {
  std::vector<int32_t> ids = data::tokenize_bytes(text);
  // First byte offset of every token (special-token strings cover several bytes).
  std::vector<int64_t> start(ids.size() + 1, 0);
  for (size_t i = 0; i < ids.size(); ++i)
    start[i + 1] = start[i] + (ids[i] < bt::kByteOffset ? static_cast<int64_t>(std::strlen(data::special_token_string(ids[i]))) : 1);
  for (const ByteSpan& span : spans) {
    check(span.begin >= 0 && span.begin < span.end && span.end <= static_cast<int64_t>(text.size()),
          "[fill-mask] mask span ", span.begin, ":", span.end, ": expected 0 <= START < END <= ", text.size(),
          " (the text's length in bytes)");
    for (size_t i = 0; i < ids.size(); ++i) {
      if (start[i + 1] <= span.begin || start[i] >= span.end) continue;
      if (start[i] < span.begin || start[i + 1] > span.end)
        throw_error("[fill-mask] mask span ", span.begin, ":", span.end, " cuts through the special token ",
                    data::special_token_string(ids[i]), " at bytes ", start[i], ":", start[i + 1]);
      ids[i] = bt::kMask;
    }
  }
  return ids;
}

FilledMask fill_mask(const pio::PerceiverIO& model, const std::vector<int32_t>& content, int64_t top,
                     bool allow_nonfinite, const std::string& command) {
  check(model.task() == pio::PerceiverTask::kMaskedLM, "[", command, "] expected a PerceiverForMaskedLM model, got a ",
        model.architecture());
  const int64_t vocab = model.config().vocab_size, max_len = model.config().max_position_embeddings;
  check(vocab == bt::kVocabSize, "[", command, "] the byte tokenizer needs vocab_size ", bt::kVocabSize, ", got ", vocab);
  check(static_cast<int64_t>(content.size()) + 2 <= max_len, "[", command, "] the text is ", content.size(),
        " tokens long; the model takes at most ", max_len - 2, " (max_position_embeddings ", max_len,
        " minus [CLS] and [SEP])");

  // [CLS] content [SEP] [PAD]... with the attention mask, as the HF tokenizer pads.
  std::vector<int32_t> ids{bt::kCls};
  ids.insert(ids.end(), content.begin(), content.end());
  ids.push_back(bt::kSep);
  std::vector<int32_t> mask(ids.size(), 1);
  ids.resize(static_cast<size_t>(max_len), bt::kPad);
  mask.resize(static_cast<size_t>(max_len), 0);
  FilledMask r;
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == bt::kMask) r.positions.push_back(static_cast<int64_t>(i));
  check(!r.positions.empty(), "[", command, "] nothing to fill: write [MASK] once per byte to predict, or mask a "
        "span of bytes (--mask START:END)");

  autograd::NoGradGuard no_grad;
  const pio::TensorMap inputs = {{"inputs", Tensor::from_vector_i32({1, max_len}, ids)},
                                 {"attention_mask", Tensor::from_vector_i32({1, max_len}, mask)}};
  r.logits = model.decode(model.encode(inputs), {{"", r.positions}}).at("logits");  // (1, n, V)
  check_finite("logits", r.logits, command, "the model", "output", allow_nonfinite);
  const Tensor probs = ops::softmax(r.logits);
  const float* p = probs.f32();
  std::vector<int32_t> filled = content;
  for (size_t k = 0; k < r.positions.size(); ++k) {
    const float* row = p + static_cast<int64_t>(k) * vocab;
    const int64_t best = bt::kByteOffset + top_indices(row + bt::kByteOffset, vocab - bt::kByteOffset, 1)[0];
    filled[static_cast<size_t>(r.positions[k] - 1)] = static_cast<int32_t>(best);
    if (top > 0) {
      std::vector<TokenScore> ranked;
      for (int64_t id : top_indices(row, vocab, top))
        ranked.push_back({static_cast<int32_t>(id), show_token(static_cast<int32_t>(id)), row[id]});
      r.top.push_back(std::move(ranked));
    }
  }
  r.text = data::decode_bytes(filled, {false, false});
  return r;
}

}  // namespace perceiver::tasks
