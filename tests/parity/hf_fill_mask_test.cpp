// `perceiver fill-mask` on the language fixture: the filled bytes are the argmax over byte ids of
// a full in-process forward pass at the masked positions; --mask spans equal literal [MASK]s;
// bad flags, texts and folders fail with one-line errors.
#include "parity/hf_task_cli_util.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/data/byte_tokenizer.h"

namespace perceiver {
namespace {

namespace pio = models::perceiver_io;
using testing::run_perceiver;

// The reference: pad like HF, full forward, argmax over bytes at every [MASK], decode the content.
std::string expected_fill(const std::string& model_dir, const std::string& text) {
  auto model = testing::load_perceiver_io_folder(model_dir);
  const int64_t max_len = model->config().max_position_embeddings;
  const data::ByteEncoding e = data::encode_bytes(text, max_len);
  autograd::NoGradGuard no_grad;
  const Tensor logits = model->forward({{"inputs", Tensor::from_vector_i32({1, max_len}, e.input_ids)},
                                        {"attention_mask", Tensor::from_vector_i32({1, max_len}, e.attention_mask)}})
                            .at("logits");
  std::vector<int32_t> ids(e.input_ids.begin() + 1, e.input_ids.begin() + e.num_tokens - 1);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] != data::byte_tokens::kMask) continue;
    const float* row = logits.f32() + static_cast<int64_t>(i + 1) * 262;
    int32_t best = 6;
    for (int32_t v = 7; v < 262; ++v)
      if (row[v] > row[best]) best = v;
    ids[i] = best;
  }
  return data::decode_bytes(ids, {false, false});
}

TEST(HfFillMask, FillsMaskedBytesWithTheModelsArgmax) {
  testing::TempDir tmp;
  const std::string dir = testing::make_family_folder("language-perceiver", tmp.path + "/lm");
  const std::string text = "Paris is the [MASK][MASK][MASK] of France.";
  const testing::CliRun r = run_perceiver({"fill-mask", "--model", dir, text}, false);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, expected_fill(dir, text) + "\n");

  // --mask 13:16 on the plain text masks the same three bytes.
  const testing::CliRun span = run_perceiver({"fill-mask", "--model", dir, "Paris is the cap of France.", "--mask", "13:16"}, false);
  ASSERT_EQ(span.code, 0) << span.out;
  EXPECT_EQ(span.out, r.out);

  // --top lists one line per masked position after the filled text.
  const testing::CliRun top = run_perceiver({"fill-mask", "--model", dir, text, "--top", "2"}, false);
  ASSERT_EQ(top.code, 0) << top.out;
  EXPECT_EQ(top.out.rfind(r.out, 0), 0u) << top.out;
  EXPECT_NE(top.out.find("token 14:"), std::string::npos) << top.out;
  EXPECT_NE(top.out.find("token 16:"), std::string::npos) << top.out;
}

TEST(HfFillMask, ErrorsAreOneLine) {
  testing::TempDir tmp;
  const std::string dir = testing::make_family_folder("language-perceiver", tmp.path + "/lm");
  const std::string flow = testing::make_family_folder("optical-flow-perceiver", tmp.path + "/flow");
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const Case cases[] = {
      {{"fill-mask", "--model", dir, "no mask here"}, "nothing to fill"},
      {{"fill-mask", "--model", dir, "abc", "--mask", "2:9"}, "expected 0 <= START < END <= 3"},
      {{"fill-mask", "--model", dir, "abc", "--mask", "1-2"}, "expected START:END byte offsets"},
      {{"fill-mask", "--model", dir, "a[SEP]b", "--mask", "0:3"}, "cuts through the special token [SEP]"},
      {{"fill-mask", "--model", dir, std::string(63, 'a') + "[MASK]"}, "the model takes at most 62"},
      {{"fill-mask", "--model", flow, "a[MASK]"}, "expected a PerceiverForMaskedLM model folder, got PerceiverForOpticalFlow"},
      {{"fill-mask", "--model", tmp.path + "/missing", "a[MASK]"}, "--model"},
      {{"fill-mask", "--model", dir}, "text is required"},
      {{"fill-mask", "--model", dir, "a[MASK]", "--top", "-1"}, "--top"},
  };
  for (const Case& c : cases) {
    const testing::CliRun r = run_perceiver(c.args);
    EXPECT_NE(r.code, 0) << c.message;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << "expected '" << c.message << "' in: " << r.out;
    EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << "not one line: " << r.out;
  }
}

}  // namespace
}  // namespace perceiver
