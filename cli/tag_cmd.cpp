// `perceiver tag --model DIR TEXT`: a byte-level tagger (PerceiverForTokenClassification, e.g. a
// tagged_text run's export/) labels every whitespace-separated token of TEXT. The text is laid
// out as in training (data::tagged_layout: [CLS], the tokens joined by single spaces, [SEP],
// padded to max_position_embeddings with an attention mask); a token's label is the class with
// the highest mean log-probability over its bytes. Prints "token<TAB>label<TAB>probability"
// (the geometric mean over the token's bytes) per token.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "finite_check.h"
#include "hf_task_util.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/error.h"
#include "perceiver/data/byte_tokenizer.h"
#include "perceiver/data/text.h"
#include "perceiver/ops/activation.h"

namespace perceiver::cli {

namespace pio = models::perceiver_io;
namespace bt = data::byte_tokens;

Runner add_tag_command(CLI::App& sub) {
  struct Args {
    std::string model, text;
    CommonOptions common;
  };
  auto a = std::make_shared<Args>();
  sub.add_option("--model", a->model, "PerceiverForTokenClassification folder (e.g. a tagged_text run's export/)")
      ->required()->check(CLI::ExistingDirectory);
  sub.add_option("text", a->text, "text; its whitespace-separated tokens are tagged")->required();
  add_common_options(sub, a->common);
  add_precision_option(sub, a->common);
  add_nonfinite_option(sub, a->common.allow_nonfinite);
  return [a]() {
    apply_common_options(a->common);
    std::vector<std::string> tokens;
    {
      std::istringstream in(a->text);
      for (std::string t; in >> t;) tokens.push_back(t);
    }
    check(!tokens.empty(), "[tag] the text has no tokens (whitespace-separated words) to tag");
    std::unique_ptr<pio::PerceiverIO> model = load_task_model(a->model, {pio::PerceiverTask::kTokenClassification}, "tag");
    check_finite_parameters(*model, "tag", a->model, a->common.allow_nonfinite);
    apply_precision(*model, a->common);
    const pio::HfPerceiverConfig& c = model->config();
    const int64_t max_len = c.max_position_embeddings, k = c.num_labels;
    // [CLS] + every token's ids + a space between tokens + [SEP] must fit: nothing is cut
    int64_t needed = 2 + static_cast<int64_t>(tokens.size()) - 1;
    for (const std::string& t : tokens) needed += static_cast<int64_t>(data::tokenize_bytes(t).size());
    check(needed <= max_len, "[tag] the text needs ", needed, " ids ([CLS], its bytes with one space between tokens, "
          "[SEP]); the model takes at most ", max_len, " (max_position_embeddings)");
    const data::TaggedLayout l = data::tagged_layout(tokens, max_len);
    std::vector<int32_t> ids = l.ids, mask(ids.size(), 1);
    ids.resize(static_cast<size_t>(max_len), bt::kPad);
    mask.resize(static_cast<size_t>(max_len), 0);

    autograd::NoGradGuard no_grad;
    const Tensor logits = model->forward({{"inputs", Tensor::from_vector_i32({1, max_len}, ids)},
                                          {"attention_mask", Tensor::from_vector_i32({1, max_len}, mask)}})
                              .at("logits");  // (1, max_len, K)
    check_finite("logits", logits, "tag", a->model, "output", a->common.allow_nonfinite);
    const Tensor probs = ops::softmax(logits);
    std::vector<double> sum_log(tokens.size() * static_cast<size_t>(k), 0.0);
    std::vector<int64_t> bytes(tokens.size(), 0);
    for (size_t p = 0; p < l.token_of.size(); ++p) {
      const int32_t t = l.token_of[p];
      if (t < 0) continue;
      ++bytes[static_cast<size_t>(t)];
      for (int64_t j = 0; j < k; ++j)
        sum_log[static_cast<size_t>(t) * k + j] += std::log(std::max(1e-30, static_cast<double>(probs.f32()[p * k + j])));
    }
    for (size_t t = 0; t < tokens.size(); ++t) {
      int64_t best = 0;
      for (int64_t j = 1; j < k; ++j)
        if (sum_log[t * k + j] > sum_log[t * k + best]) best = j;
      const std::string label = best < static_cast<int64_t>(c.id2label.size()) ? c.id2label[best] : "LABEL_" + std::to_string(best);
      std::printf("%s\t%s\t%.4f\n", tokens[t].c_str(), label.c_str(), std::exp(sum_log[t * k + best] / bytes[t]));
    }
    return 0;
  };
}

}  // namespace perceiver::cli
