// `perceiver fill-mask --model DIR [--mask START:END]... [--top K] TEXT`: the language
// Perceiver (PerceiverForMaskedLM) fills masked bytes. TEXT is tokenised with the byte
// tokenizer; every literal "[MASK]" becomes one mask token (one byte to predict), and each
// --mask START:END replaces the text's bytes [START, END) by mask tokens, as the upstream example
// does (tokens 52..60 of "This is an incomplete sentence where some words are missing." are bytes
// 51..59: --mask 51:60). The sequence is padded to max_position_embeddings with an attention
// mask, as in upstream; only the masked positions are decoded. Each mask gets the most likely
// byte; the filled text (decoded as UTF-8, invalid sequences as U+FFFD) is printed.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "commands.h"
#include "finite_check.h"
#include "hf_task_util.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/error.h"
#include "perceiver/data/byte_tokenizer.h"
#include "perceiver/ops/activation.h"

namespace perceiver::cli {
namespace {

namespace pio = models::perceiver_io;
namespace bt = data::byte_tokens;

struct Span {
  int64_t begin = 0, end = 0;  // byte offsets into the text, [begin, end)
};

Span parse_span(const std::string& s, int64_t text_bytes) {
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
  check(b >= 0 && e >= 0, "[fill-mask] --mask: expected START:END byte offsets (e.g. 51:60), got '", s, "'");
  check(b < e && e <= text_bytes, "[fill-mask] --mask ", s, ": expected 0 <= START < END <= ", text_bytes,
        " (the text's length in bytes), got ", b, ":", e);
  return {b, e};
}

// Content tokens of the text with the --mask spans applied.
std::vector<int32_t> masked_content(const std::string& text, const std::vector<std::string>& spans) {
  std::vector<int32_t> ids = data::tokenize_bytes(text);
  // First byte offset of every token (special-token strings cover several bytes).
  std::vector<int64_t> start(ids.size() + 1, 0);
  for (size_t i = 0; i < ids.size(); ++i)
    start[i + 1] = start[i] + (ids[i] < bt::kByteOffset ? static_cast<int64_t>(std::strlen(data::special_token_string(ids[i]))) : 1);
  for (const std::string& s : spans) {
    const Span span = parse_span(s, static_cast<int64_t>(text.size()));
    for (size_t i = 0; i < ids.size(); ++i) {
      if (start[i + 1] <= span.begin || start[i] >= span.end) continue;
      if (start[i] < span.begin || start[i + 1] > span.end)
        throw_error("[fill-mask] --mask ", s, " cuts through the special token ", data::special_token_string(ids[i]),
                    " at bytes ", start[i], ":", start[i + 1]);
      ids[i] = bt::kMask;
    }
  }
  return ids;
}

// A byte for display: printable ASCII as itself, anything else as \xHH.
std::string show_byte(int32_t id) {
  if (id < bt::kByteOffset) return data::special_token_string(id);
  const int b = id - bt::kByteOffset;
  char buf[16];
  if (b >= 0x20 && b < 0x7F) std::snprintf(buf, sizeof buf, "%c", b);
  else std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned>(b) & 0xFFu);
  return buf;
}

}  // namespace

Runner add_fill_mask_command(CLI::App& sub) {
  struct Args {
    std::string model, text;
    std::vector<std::string> spans;
    int top = 0;
    CommonOptions common;
  };
  auto a = std::make_shared<Args>();
  sub.add_option("--model", a->model, "HF PerceiverForMaskedLM folder (config.json + model.safetensors or pytorch_model.bin)")
      ->required()->check(CLI::ExistingDirectory);
  sub.add_option("text", a->text, "text; each literal [MASK] is one byte to predict")->required();
  sub.add_option("--mask", a->spans, "also mask the text's bytes START:END (0-based, END excluded); repeatable");
  sub.add_option("--top", a->top, "also list the K most likely bytes of every masked position")->check(CLI::Range(0, 262));
  add_common_options(sub, a->common);
  add_precision_option(sub, a->common);
  add_nonfinite_option(sub, a->common.allow_nonfinite);
  return [a]() {
    apply_common_options(a->common);
    const std::vector<int32_t> content = masked_content(a->text, a->spans);
    std::unique_ptr<pio::PerceiverIO> model = load_task_model(a->model, {pio::PerceiverTask::kMaskedLM}, "fill-mask");
    check_finite_parameters(*model, "fill-mask", a->model, a->common.allow_nonfinite);
    apply_precision(*model, a->common);
    const int64_t vocab = model->config().vocab_size, max_len = model->config().max_position_embeddings;
    check(vocab == bt::kVocabSize, "[fill-mask] ", a->model, ": the byte tokenizer needs vocab_size ", bt::kVocabSize,
          ", got ", vocab);
    check(static_cast<int64_t>(content.size()) + 2 <= max_len, "[fill-mask] the text is ", content.size(),
          " tokens long; the model takes at most ", max_len - 2, " (max_position_embeddings ", max_len,
          " minus [CLS] and [SEP])");

    // [CLS] content [SEP] [PAD]... with the attention mask, as the HF tokenizer pads.
    std::vector<int32_t> ids{bt::kCls};
    ids.insert(ids.end(), content.begin(), content.end());
    ids.push_back(bt::kSep);
    std::vector<int32_t> mask(ids.size(), 1);
    ids.resize(static_cast<size_t>(max_len), bt::kPad);
    mask.resize(static_cast<size_t>(max_len), 0);
    std::vector<int64_t> positions;
    for (size_t i = 0; i < ids.size(); ++i)
      if (ids[i] == bt::kMask) positions.push_back(static_cast<int64_t>(i));
    check(!positions.empty(), "[fill-mask] nothing to fill: write [MASK] once per byte to predict, or use --mask START:END");

    autograd::NoGradGuard no_grad;
    const pio::TensorMap inputs = {{"inputs", Tensor::from_vector_i32({1, max_len}, ids)},
                                   {"attention_mask", Tensor::from_vector_i32({1, max_len}, mask)}};
    const pio::EncoderState state = model->encode(inputs);
    const Tensor logits = model->decode(state, {{"", positions}}).at("logits");  // (1, n, V)
    check_finite("logits", logits, "fill-mask", a->model, "output", a->common.allow_nonfinite);
    const Tensor probs = ops::softmax(logits);
    const float* p = probs.f32();

    std::vector<int32_t> filled = content;
    for (size_t k = 0; k < positions.size(); ++k) {
      const float* row = p + static_cast<int64_t>(k) * vocab;
      // The most likely byte (special tokens are not text).
      const int64_t best = bt::kByteOffset + top_indices(row + bt::kByteOffset, vocab - bt::kByteOffset, 1)[0];
      filled[static_cast<size_t>(positions[k] - 1)] = static_cast<int32_t>(best);
    }
    std::printf("%s\n", data::decode_bytes(filled, {false, false}).c_str());
    if (a->top > 0) {
      for (size_t k = 0; k < positions.size(); ++k) {
        const float* row = p + static_cast<int64_t>(k) * vocab;
        std::printf("token %lld:", static_cast<long long>(positions[k]));
        for (int64_t id : top_indices(row, vocab, a->top))
          std::printf(" '%s' %.4f", show_byte(static_cast<int32_t>(id)).c_str(), row[id]);
        std::printf("\n");
      }
    }
    return 0;
  };
}

}  // namespace perceiver::cli
