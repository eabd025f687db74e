// Training Perceiver IO text models from run configs (train/task.h): byte-level masked LM on a
// small generated corpus (the loss falls; an interrupted + resumed run equals an uninterrupted
// one; the exported folder gives the run's logits), sequence classification on labelled JSONL
// (learns a separable task; starts from a masked-LM export with --init semantics), and the
// errors for mismatched models and data.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "perceiver/autograd/grad_mode.h"
#include "perceiver/data/text.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/models/registry.h"
#include "perceiver/train/checkpoint.h"
#include "perceiver/train/task.h"
#include "perceiver/train/trainer.h"
#include "testing/train_checks.h"
#include "testing/tiny_data.h"

namespace perceiver {
namespace {

// Documents of a tiny language: repeated words, so masked bytes are predictable from context.
void write_corpus(const std::string& dir, int docs) {
  std::filesystem::create_directories(dir);
  const char* words[] = {"latent ", "query ", "byte ", "array ", "attend "};
  for (int d = 0; d < docs; ++d) {
    std::ofstream f(dir + "/doc" + std::to_string(d) + ".txt");
    for (int i = 0; i < 120; ++i) f << words[(i * 3 + d) % 5] << words[(i + d) % 5];
  }
}

nlohmann::json hub(const std::string& architecture) {
  return {{"architectures", {architecture}}, {"d_model", 16},          {"d_latents", 24},
          {"num_latents", 8},               {"num_self_attends_per_block", 1},
          {"num_self_attention_heads", 2},  {"num_cross_attention_heads", 1},
          {"qk_channels", 16},              {"v_channels", 24},        {"max_position_embeddings", 40},
          {"num_labels", 3}};
}

train::RunConfig text_run(const std::string& dir, int epochs) {
  return train::parse_run_config({{"model", {{"type", "perceiver_io"}, {"hub_config", hub("PerceiverForMaskedLM")}}},
                                  {"train", {{"epochs", epochs}, {"batch_size", 8}, {"lr", 3e-3}, {"warmup_steps", 2},
                                             {"log_every", 1}, {"seed", 3}}},
                                  {"data", {{"format", "text"}, {"dir", dir}, {"seq_len", 32}, {"test_fraction", 0.25}}}});
}

TEST(TextTrain, MaskedLMLearnsResumesExactlyAndExports) {
  testing::TempDir tmp;
  write_corpus(tmp.path + "/corpus", 8);
  train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = tmp.path + "/full";
  const train::RunConfig rc = text_run(tmp.path + "/corpus", 3);
  const train::TrainResult full = train::run_training(rc, opt);
  ASSERT_FALSE(full.interrupted);
  // held-out documents: far better than the 8 bits per byte of a uniform guess over 262 ids
  // (a run this short reaches the byte frequencies: the space, ~1/6 of the bytes)
  EXPECT_GT(full.last_eval.count, 50);
  EXPECT_GT(full.last_eval.accuracy(), 0.12) << "masked-byte accuracy";
  EXPECT_LT(full.last_eval.bits_per_prediction(), 4.5);
  std::ifstream metrics(opt.out_dir + "/metrics.jsonl");
  std::string line;
  double first_loss = -1, last_loss = 0;
  while (std::getline(metrics, line)) {
    const nlohmann::json r = nlohmann::json::parse(line);
    if (r["type"] == "train") {
      if (first_loss < 0) first_loss = r["loss"];
      last_loss = r["loss"];
    } else if (r["type"] == "eval") {
      EXPECT_TRUE(r.contains("test_bits_per_byte"));
    }
  }
  EXPECT_LT(last_loss, 0.7 * first_loss) << "the training loss falls";

  // interrupted + resumed == uninterrupted, bit for bit
  testing::expect_resume_is_exact(rc, opt, tmp.path + "/full", tmp.path + "/split", 4);

  // `perceiver eval`'s path: the run's task in evaluation mode with the final weights gives the
  // run's last evaluation
  {
    const train::Checkpoint ck = train::read_checkpoint(tmp.path + "/full/model.safetensors");
    train::Task task(ck.config, train::Task::Mode::kEvaluate);
    task.model().load_state_dict(ck.params, "ck");
    task.model().train(false);
    const train::EvalResult r = task.evaluate(7);  // another batch size: the same masks
    EXPECT_EQ(r.count, full.last_eval.count);
    EXPECT_EQ(r.correct, full.last_eval.correct);
    EXPECT_NEAR(r.loss, full.last_eval.loss, 1e-5);
  }
  // the exported folder is an HF PerceiverForMaskedLM with the run's weights
  auto model = io::load_model_folder(tmp.path + "/full/export", {"PerceiverForMaskedLM"}, "test");
  const auto ck = train::read_checkpoint(tmp.path + "/full/model.safetensors").params;
  for (auto& [name, t] : model->named_parameters()) EXPECT_EQ(t.to_vector(), ck.at(name).to_vector()) << name;
}

TEST(TextTrain, SequenceClassifierLearnsAndStartsFromAMaskedLM) {
  testing::TempDir tmp;
  // three classes told apart by their words
  const std::string file = tmp.path + "/train.jsonl";
  {
    std::ofstream f(file);
    const char* cls[] = {"alpha", "beta", "gamma"};
    const char* words[] = {"sun rain wind ", "one two three ", "red green blue "};
    for (int i = 0; i < 90; ++i)
      f << nlohmann::json({{"text", std::string(words[i % 3]) + std::to_string(i)}, {"label", cls[i % 3]}}).dump() << "\n";
  }
  nlohmann::json j = {{"model", {{"type", "perceiver_io"}, {"hub_config", hub("PerceiverForSequenceClassification")}}},
                      {"train", {{"epochs", 8}, {"batch_size", 10}, {"lr", 3e-3}, {"warmup_steps", 2}, {"seed", 1}}},
                      {"data", {{"format", "labelled_text"}, {"dir", file}, {"seq_len", 32}, {"test_fraction", 0.2}}}};
  train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = tmp.path + "/cls";
  const train::TrainResult r = train::run_training(train::parse_run_config(j), opt);
  EXPECT_EQ(r.last_eval.count, 18);
  EXPECT_GE(r.last_eval.accuracy(), 0.9);
  EXPECT_EQ(r.last_eval.num_classes, 3);
  {
    // interrupted + resumed == uninterrupted, bit for bit: the checkpoint's model config holds the
    // classes (id2label) the task added, which a resumed run's config must be recognised as
    train::RunConfig first = train::parse_run_config(j);
    first.train.max_steps = 5;
    train::TrainOptions split = opt;
    split.out_dir = tmp.path + "/cls_split";
    ASSERT_TRUE(train::run_training(first, split).interrupted);
    split.resume = true;
    ASSERT_FALSE(train::run_training(train::parse_run_config(j), split).interrupted);
    const auto a = io::load_safetensors(tmp.path + "/cls/model.safetensors").tensors;
    const auto b = io::load_safetensors(tmp.path + "/cls_split/model.safetensors").tensors;
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [name, t] : a) EXPECT_EQ(t.to_vector(), b.at(name).to_vector()) << name;
  }
  // the classes (sorted labels) are the export's id2label, and the checkpoint's config holds them
  const nlohmann::json exported = read_json_file(tmp.path + "/cls/export/config.json");
  EXPECT_EQ(exported.at("id2label"), nlohmann::json({{"0", "alpha"}, {"1", "beta"}, {"2", "gamma"}}));
  EXPECT_EQ(train::read_checkpoint(tmp.path + "/cls/model.safetensors").config.model.at("hub_config").at("id2label"),
            exported.at("id2label"));
  // a hub config that names the classes decides the ids: here in reverse order
  nlohmann::json named = j;
  named["model"]["hub_config"]["id2label"] = {{"0", "gamma"}, {"1", "beta"}, {"2", "alpha"}};
  train::Task task(train::parse_run_config(named));
  EXPECT_EQ(task.class_names(), (std::vector<std::string>{"gamma", "beta", "alpha"}));

  // --init from a masked LM: the shared encoder is loaded, the classification head is new
  write_corpus(tmp.path + "/corpus", 4);
  opt.out_dir = tmp.path + "/mlm";
  train::RunConfig mlm = text_run(tmp.path + "/corpus", 1);
  ASSERT_FALSE(train::run_training(mlm, opt).interrupted);
  auto cls_model = models::create_model(hub("PerceiverForSequenceClassification"), "test", 99);
  const std::vector<std::string> fresh = io::init_from_model_folder(*cls_model, tmp.path + "/mlm/export");
  EXPECT_NE(std::find_if(fresh.begin(), fresh.end(), [](const std::string& s) {
              return s.rfind("perceiver.decoder.decoder.final_layer.weight", 0) == 0;
            }), fresh.end());
  EXPECT_NE(fresh.back().find("tensors of the PerceiverForMaskedLM folder unused"), std::string::npos) << fresh.back();
  const auto mlm_weights = io::load_safetensors(tmp.path + "/mlm/export/model.safetensors").tensors;
  for (const char* name : {"perceiver.embeddings.latents", "perceiver.input_preprocessor.embeddings.weight",
                           "perceiver.encoder.self_attends.0.mlp.dense1.weight"}) {
    bool found = false;
    for (auto& [n, t] : cls_model->named_parameters())
      if (n == name) {
        found = true;
        EXPECT_EQ(t.to_vector(), mlm_weights.at(name).to_vector()) << name;
      }
    EXPECT_TRUE(found) << name;
  }
}

// num_labels 1: regression on numeric labels (HF's problem_type "regression"): the test error
// falls well below the labels' variance (what predicting their mean gives).
TEST(TextTrain, SequenceRegressionLearnsNumericLabels) {
  testing::TempDir tmp;
  const std::string file = tmp.path + "/counts.tsv";
  std::vector<double> values;
  {
    std::ofstream f(file);
    for (int i = 0; i < 120; ++i) {
      const int n = i % 6;  // the label: how many x the text holds
      f << std::string(n, 'x') << std::string(6 - n, 'o') << " " << i << "\t" << n * 0.5 << "\n";
      values.push_back(n * 0.5);
    }
  }
  double mean = 0, var = 0;
  for (double v : values) mean += v / values.size();
  for (double v : values) var += (v - mean) * (v - mean) / values.size();
  nlohmann::json h = hub("PerceiverForSequenceClassification");
  h["num_labels"] = 1;
  const nlohmann::json j = {{"model", {{"type", "perceiver_io"}, {"hub_config", h}}},
                            {"train", {{"epochs", 10}, {"batch_size", 12}, {"lr", 3e-3}, {"warmup_steps", 2}, {"seed", 2}}},
                            {"data", {{"format", "labelled_text"}, {"dir", file}, {"seq_len", 16}, {"test_fraction", 0.2}}}};
  train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = tmp.path + "/reg";
  const train::TrainResult r = train::run_training(train::parse_run_config(j), opt);
  EXPECT_TRUE(r.last_eval.regression);
  EXPECT_EQ(r.last_eval.count, 24);
  EXPECT_LT(r.last_eval.loss, 0.25 * var) << "mean squared error vs the labels' variance " << var;
  // a label that is not a number
  std::ofstream(tmp.path + "/bad.tsv") << "some text\t1.5\nother text\tmany\n";
  nlohmann::json bad = j;
  bad["data"]["dir"] = tmp.path + "/bad.tsv";
  try {
    train::run_training(train::parse_run_config(bad), opt);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.tsv:2: the label \"many\" is not a number; the model has num_labels 1"),
              std::string::npos) << e.what();
  }
}

TEST(TextTrain, MismatchedModelsAndDataAreRefused) {
  testing::TempDir tmp;
  write_corpus(tmp.path + "/corpus", 3);
  train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = tmp.path + "/o";
  const auto fails = [&](const train::RunConfig& rc, const std::string& part) {
    try {
      train::run_training(rc, opt);
      ADD_FAILURE() << "expected an error containing " << part;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  train::RunConfig rc = text_run(tmp.path + "/corpus", 1);
  rc.model["hub_config"]["architectures"] = {"PerceiverForSequenceClassification"};
  fails(rc, "data.format \"text\" trains a PerceiverForMaskedLM");
  rc = text_run(tmp.path + "/corpus", 1);
  rc.data.seq_len = 64;
  fails(rc, "data.seq_len (64) exceeds the model's max_position_embeddings (40)");
  rc = text_run(tmp.path + "/missing", 1);
  fails(rc, "missing: no such file or directory");
  rc = train::parse_run_config({{"model", {{"num_latents", 4}, {"d_latents", 8}}},
                                {"data", {{"format", "text"}, {"dir", tmp.path + "/corpus"}}}});
  fails(rc, "expected \"model\": {\"type\": \"perceiver_io\"");
  rc = text_run(tmp.path + "/corpus", 1);
  rc.model["hub_config"]["vocab_size"] = 100;
  fails(rc, "model.hub_config.vocab_size must be at least 262");
  // integer labels are ordered as numbers: "2" before "10"
  std::ofstream(tmp.path + "/n.tsv") << "a\t10\nb\t2\nc\t1\nd\t2\ne\t10\nf\t1\ng\t1\nh\t2\ni\t10\n";
  {
    train::RunConfig n = train::parse_run_config(
        {{"model", {{"type", "perceiver_io"}, {"hub_config", hub("PerceiverForSequenceClassification")}}},
         {"data", {{"format", "labelled_text"}, {"dir", tmp.path + "/n.tsv"}, {"seq_len", 16}, {"test_fraction", 0.2}}}});
    train::Task task(n);
    EXPECT_EQ(task.class_names(), (std::vector<std::string>{"1", "2", "10"}));
  }
  // an image run naming a text model
  rc = train::parse_run_config({{"model", {{"type", "perceiver_io"}, {"hub_config", hub("PerceiverForMaskedLM")}}}});
  fails(rc, "PerceiverForMaskedLM is not an image classifier (image data, `predict`); train it from data.format \"text\"");
  // a label only the test file has
  const std::string tr = tmp.path + "/tr.tsv", te = tmp.path + "/te.tsv";
  std::ofstream(tr) << "a b c\tx\nd e f\ty\n";
  std::ofstream(te) << "g h i\tz\n";
  rc = train::parse_run_config({{"model", {{"type", "perceiver_io"}, {"hub_config", hub("PerceiverForSequenceClassification")}}},
                                {"data", {{"format", "labelled_text"}, {"dir", tr}, {"test_file", te}, {"seq_len", 16}}}});
  fails(rc, "te.tsv:1: the label \"z\" is not one of the 3 classes (x, y, LABEL_2)");
}

// Token classification (ours: PerceiverForTokenClassification): each byte of a word carries the
// word's tag; the tagger learns which words are which; the layout of ids and labels; the export;
// tags only the test file has.
TEST(TextTrain, TokenClassifierTagsEveryByteOfAWord) {
  testing::TempDir tmp;
  const std::string file = tmp.path + "/train.jsonl";
  {
    std::ofstream f(file);
    const std::vector<std::pair<const char*, const char*>> words = {
        {"red", "COLOUR"}, {"green", "COLOUR"}, {"blue", "COLOUR"}, {"cat", "ANIMAL"},
        {"dog", "ANIMAL"}, {"owl", "ANIMAL"},   {"the", "O"},       {"and", "O"}};
    for (int i = 0; i < 120; ++i) {
      nlohmann::json tokens = nlohmann::json::array(), tags = nlohmann::json::array();
      for (int k = 0; k < 4; ++k) {
        const auto& w = words[(i * 5 + k * 3 + i / 8) % words.size()];
        tokens.push_back(w.first);
        tags.push_back(w.second);
      }
      f << nlohmann::json({{"tokens", tokens}, {"tags", tags}}).dump() << "\n";
    }
  }
  nlohmann::json h = hub("PerceiverForTokenClassification");
  h["num_labels"] = 3;
  const nlohmann::json j = {{"model", {{"type", "perceiver_io"}, {"hub_config", h}}},
                            {"train", {{"epochs", 10}, {"batch_size", 12}, {"lr", 3e-3}, {"warmup_steps", 2}, {"seed", 4}}},
                            {"data", {{"format", "tagged_text"}, {"dir", file}, {"seq_len", 24}, {"test_fraction", 0.2}}}};
  // the layout: [CLS] r e d _ c a t ... [SEP] [PAD]; labels on the words' bytes only
  {
    train::Task task(train::parse_run_config(j));
    EXPECT_EQ(task.kind(), train::Task::Kind::kTokenClassifier);
    EXPECT_EQ(task.class_names(), (std::vector<std::string>{"ANIMAL", "COLOUR", "O"}));
    const models::TensorMap b = task.test_batch(0, 1);
    const int32_t* id = b.at("inputs").data<int32_t>();
    const int32_t* y = b.at("labels").data<int32_t>();
    const int32_t* m = b.at("attention_mask").data<int32_t>();
    EXPECT_EQ(id[0], 4);  // [CLS]
    EXPECT_EQ(y[0], -100);
    int64_t len = 0;
    while (len < 24 && m[len]) ++len;
    ASSERT_GT(len, 10);
    EXPECT_EQ(id[len - 1], 5);  // [SEP]
    EXPECT_EQ(y[len - 1], -100);
    for (int64_t t = 1; t < len - 1; ++t) {
      if (id[t] == 6 + ' ') {
        EXPECT_EQ(y[t], -100) << "a separator is not predicted (position " << t << ")";
      } else {
        EXPECT_TRUE(y[t] >= 0 && y[t] < 3) << t;
        if (id[t - 1] != 6 + ' ' && t > 1) EXPECT_EQ(y[t], y[t - 1]) << "one tag for a word's bytes (" << t << ")";
      }
    }
    for (int64_t t = len; t < 24; ++t) EXPECT_EQ(y[t], -100);
    // the ids follow the class names: every byte of a colour word is COLOUR (1), of an animal ANIMAL (0)
    const auto word_at = [&](int64_t t) {
      std::string w;
      while (t < len - 1 && id[t] != 6 + ' ') w += static_cast<char>(id[t++] - 6);
      return w;
    };
    int checked = 0;
    for (int64_t t = 1; t < len - 1; ++t) {
      if (id[t] == 6 + ' ' || (t > 1 && id[t - 1] != 6 + ' ')) continue;  // word starts only
      const std::string w = word_at(t);
      const int32_t want = (w == "red" || w == "green" || w == "blue") ? 1 : (w == "cat" || w == "dog" || w == "owl") ? 0 : 2;
      for (size_t j = 0; j < w.size(); ++j) EXPECT_EQ(y[t + static_cast<int64_t>(j)], want) << w;
      ++checked;
    }
    EXPECT_EQ(checked, 4);
  }
  train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = tmp.path + "/tag";
  const train::TrainResult r = train::run_training(train::parse_run_config(j), opt);
  EXPECT_EQ(r.last_eval.num_classes, 3);
  EXPECT_GT(r.last_eval.count, 24 * 10) << "tagged bytes in the 24 test sentences";
  EXPECT_GE(r.last_eval.accuracy(), 0.9) << "byte accuracy";
  const nlohmann::json exported = read_json_file(tmp.path + "/tag/export/config.json");
  EXPECT_EQ(exported.at("architectures"), nlohmann::json::array({"PerceiverForTokenClassification"}));
  EXPECT_EQ(exported.at("id2label"), nlohmann::json({{"0", "ANIMAL"}, {"1", "COLOUR"}, {"2", "O"}}));
  auto model = io::load_model_folder(tmp.path + "/tag/export", {"PerceiverForTokenClassification"}, "test");
  const auto ck = train::read_checkpoint(tmp.path + "/tag/model.safetensors").params;
  for (auto& [name, t] : model->named_parameters()) EXPECT_EQ(t.to_vector(), ck.at(name).to_vector()) << name;
  // a tag only the test file has; a sentence longer than seq_len is cut, not refused
  const std::string tr = tmp.path + "/tr.conll", te = tmp.path + "/te.conll";
  std::ofstream(tr) << "red COLOUR\ncat ANIMAL\n\nthe O\n" << std::string(40, 'x') << " O\n";
  std::ofstream(te) << "dog ANIMAL\nowl BIRD\n";
  nlohmann::json bad = j;
  bad["data"] = {{"format", "tagged_text"}, {"dir", tr}, {"test_file", te}, {"seq_len", 24}};
  try {
    train::Task task(train::parse_run_config(bad));
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("te.conll:1: the tag \"BIRD\" of token 1 (\"owl\") of the sentence is not one of the 3 classes (ANIMAL, COLOUR, O)"),
              std::string::npos) << e.what();
  }
  // a model that is not a tagger for tagged text
  nlohmann::json wrong = j;
  wrong["model"]["hub_config"]["architectures"] = {"PerceiverForSequenceClassification"};
  try {
    train::Task task(train::parse_run_config(wrong));
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("data.format \"tagged_text\" trains a PerceiverForTokenClassification"),
              std::string::npos) << e.what();
  }
}

// data.streaming reads the corpus files in place per batch: the same split, batches and so the
// same weights as the in-memory run, bit for bit; gzip is refused; a file that shrinks mid-run is
// an error naming it.
TEST(TextTrain, StreamedCorpusTrainsExactlyAsInMemory) {
  testing::TempDir tmp;
  write_corpus(tmp.path + "/corpus", 6);
  std::ofstream(tmp.path + "/corpus/empty.txt").close();  // empty: no document, in both modes
  train::TrainOptions opt;
  opt.quiet = true;
  train::RunConfig rc = text_run(tmp.path + "/corpus", 1);
  rc.train.max_steps = 6;
  opt.out_dir = tmp.path + "/memory";
  const train::TrainResult memory = train::run_training(rc, opt);
  rc.data.streaming = true;
  opt.out_dir = tmp.path + "/streamed";
  const train::TrainResult streamed = train::run_training(rc, opt);
  EXPECT_EQ(read_json_file(tmp.path + "/memory/data_split.json"), read_json_file(tmp.path + "/streamed/data_split.json"));
  const auto a = train::read_checkpoint(tmp.path + "/memory/checkpoint.safetensors").params;
  const auto b = train::read_checkpoint(tmp.path + "/streamed/checkpoint.safetensors").params;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_EQ(t.to_vector(), b.at(name).to_vector()) << name;
  // every streamed sequence equals the in-memory one (files whose size is an exact multiple of
  // the content length and a 1-byte file included)
  {
    const std::string dir = tmp.path + "/edge";
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/a.txt") << std::string(30 * 3, 'a');  // seq_len 32: 30 content bytes per sequence
    std::ofstream(dir + "/b.txt") << "b";
    std::ofstream(dir + "/c.txt") << std::string(31, 'c');
    const data::TextSequences mem = data::text_sequences(data::read_text_documents(dir), 32);
    const data::StreamedSequences str(data::index_text_files(dir), 32);
    ASSERT_EQ(str.size(), mem.size());
    std::vector<int64_t> rows(static_cast<size_t>(str.size()));
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
    Tensor ids = Tensor::empty({str.size(), 32}, DType::kI32), mask = Tensor::empty({str.size(), 32}, DType::kI32);
    str.read(rows.data(), str.size(), ids.data<int32_t>(), mask.data<int32_t>());
    const auto ints = [](const Tensor& t) { return std::vector<int32_t>(t.data<int32_t>(), t.data<int32_t>() + t.numel()); };
    EXPECT_EQ(ints(ids), ints(mem.ids));
    EXPECT_EQ(ints(mask), ints(mem.attention_mask));
  }
  // evaluation of the held-out documents is the same in both modes
  {
    train::RunConfig m = rc;
    m.data.streaming = false;
    train::Task a_task(m), b_task(rc);
    a_task.model().load_state_dict(a, "memory");
    b_task.model().load_state_dict(a, "memory");
    const train::EvalResult ea = a_task.evaluate(16), eb = b_task.evaluate(16);
    EXPECT_GT(ea.count, 0);
    EXPECT_EQ(ea.count, eb.count);
    EXPECT_EQ(ea.correct, eb.correct);
    EXPECT_EQ(ea.loss, eb.loss);
  }
  // the checkpoint's config keeps streaming: eval reads the held-out files in place too
  train::RunConfig back = train::read_checkpoint(tmp.path + "/streamed/checkpoint.safetensors").config;
  EXPECT_TRUE(back.data.streaming);
  train::Task task(back, train::Task::Mode::kEvaluate);
  EXPECT_EQ(task.test_size(), train::Task(rc).test_size());

  // gzip cannot be read at random offsets
  {
    std::ofstream g(tmp.path + "/corpus/packed.txt.gz", std::ios::binary);
    g << std::string("\x1f\x8b\x08\x00", 4) << "not really";
  }
  try {
    train::Task t(rc);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("packed.txt.gz: gzip data cannot be streamed"), std::string::npos) << e.what();
  }
  std::filesystem::remove(tmp.path + "/corpus/packed.txt.gz");
  // a training file that shrinks after indexing
  train::Task t(rc);
  const std::vector<std::string> files = read_json_file(tmp.path + "/streamed/data_split.json").at("train");
  for (const auto& f : files) std::ofstream(f, std::ios::trunc) << "x";
  std::vector<int64_t> perm(t.train_size());
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(perm.size() - 1 - i);
  Rng rng(1);
  try {
    t.train_batch(perm, 0, 4, rng);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(the file changed after the corpus was indexed)"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace perceiver
