// `perceiver fill-mask --model DIR [--mask START:END]... [--top K] TEXT`: the language
// Perceiver (PerceiverForMaskedLM) fills masked bytes. TEXT is tokenised with the byte
// tokenizer; every literal "[MASK]" becomes one mask token (one byte to predict), and each
// --mask START:END replaces the text's bytes [START, END) by mask tokens, as the upstream example
// does (tokens 52..60 of "This is an incomplete sentence where some words are missing." are bytes
// 51..59: --mask 51:60). The sequence is padded to max_position_embeddings with an attention
// mask, as in upstream; only the masked positions are decoded. Each mask gets the most likely
// byte; the filled text (decoded as UTF-8, invalid sequences as U+FFFD) is printed.
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "finite_check.h"
#include "hf_task_util.h"
#include "perceiver/tasks/fill_mask.h"

namespace perceiver::cli {

namespace pio = models::perceiver_io;

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
    std::vector<tasks::ByteSpan> spans;
    for (const std::string& s : a->spans) spans.push_back(tasks::parse_byte_span(s, static_cast<int64_t>(a->text.size())));
    const std::vector<int32_t> content = tasks::masked_content(a->text, spans);
    std::unique_ptr<pio::PerceiverIO> model = load_task_model(a->model, {pio::PerceiverTask::kMaskedLM}, "fill-mask");
    check_finite_parameters(*model, "fill-mask", a->model, a->common.allow_nonfinite);
    apply_precision(*model, a->common);
    const tasks::FilledMask r = tasks::fill_mask(*model, content, a->top, a->common.allow_nonfinite);
    std::printf("%s\n", r.text.c_str());
    for (size_t k = 0; k < r.top.size(); ++k) {
      std::printf("token %lld:", static_cast<long long>(r.positions[k]));
      for (const tasks::TokenScore& t : r.top[k]) std::printf(" '%s' %.4f", t.text.c_str(), t.probability);
      std::printf("\n");
    }
    return 0;
  };
}

}  // namespace perceiver::cli
