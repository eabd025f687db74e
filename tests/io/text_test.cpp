// Byte-level text data (data/text.h) against the committed fixture tests/data/text: documents
// from files and directories (gzip, hidden and empty files), whole-document splits, fixed-length
// sequences of byte ids, masked-LM corruption (rates, 80/10/10, spans, padding untouched), and
// labelled JSONL/TSV; corrupt, empty, truncated and malformed inputs are errors naming the file.
#include <gtest/gtest.h>

#include <zlib.h>

#include <filesystem>
#include <set>

#include "io_test_util.h"
#include "perceiver/data/byte_tokenizer.h"
#include "perceiver/data/text.h"

namespace perceiver {
namespace {

using testing::TempDir;
using testing::throws_error;
using testing::write_bytes;

const std::string kDir = std::string(PERCEIVER_SOURCE_DIR) + "/tests/data/text";

TEST(Text, ReadsFilesAndDirectories) {
  const auto docs = data::read_text_documents(kDir + "/corpus");
  ASSERT_EQ(docs.size(), 3u);  // alpha, beta, sub/gamma.rst.gz; .hidden.txt and the empty file skipped
  EXPECT_EQ(docs[0].name, kDir + "/corpus/alpha.txt");
  EXPECT_EQ(docs[1].name, kDir + "/corpus/beta.txt");
  EXPECT_EQ(docs[2].name, kDir + "/corpus/sub/gamma.rst.gz");
  EXPECT_EQ(docs[2].bytes, "Decoding queries ask the latents for one output each.\n");  // gunzipped
  data::TextReadOptions only_gz;
  only_gz.extensions = {".rst.gz"};
  ASSERT_EQ(data::read_text_documents(kDir + "/corpus", only_gz).size(), 1u);
  ASSERT_EQ(data::read_text_documents(kDir + "/corpus/beta.txt").size(), 1u);
  only_gz.extensions = {".pod"};
  EXPECT_TRUE(throws_error([&] { data::read_text_documents(kDir + "/corpus", only_gz); },
                           {"[text]", "no non-empty text files ending with .pod"}));
  EXPECT_TRUE(throws_error([&] { data::read_text_documents(kDir + "/missing"); }, {"missing: no such file"}));
  // a symlink beside its target is the same document (it must not land on both sides of a split)
  TempDir tmp;
  write_bytes(tmp.dir() + "/a.txt", "one document");
  std::filesystem::create_symlink(tmp.dir() + "/a.txt", tmp.dir() + "/b.txt");
  write_bytes(tmp.dir() + "/c.txt", "another");
  ASSERT_EQ(data::read_text_documents(tmp.dir()).size(), 2u);
  data::TextReadOptions small;
  small.max_total_bytes = 100;
  EXPECT_TRUE(throws_error([&] { data::read_text_documents(kDir + "/corpus", small); },
                           {"beta.txt", "exceeds the limit of"}));
}

TEST(Text, CorruptAndTruncatedGzipAreErrors) {
  TempDir tmp;
  const std::string text(1000, 'x');
  // a real .gz, then cut and damaged copies
  const std::string good = tmp.dir() + "/good.txt.gz";
  {
    gzFile f = gzopen(good.c_str(), "wb");
    gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
    gzclose(f);
  }
  ASSERT_EQ(data::read_text_documents(good)[0].bytes, text);
  std::string bytes;
  {
    std::ifstream in(good, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  write_bytes(tmp.dir() + "/cut.gz", bytes.substr(0, bytes.size() / 2));
  EXPECT_TRUE(throws_error([&] { data::read_text_documents(tmp.dir() + "/cut.gz"); }, {"cut.gz", "truncated"}));
  std::string bad = bytes;
  for (size_t i = 12; i < bad.size() - 8; ++i) bad[i] = static_cast<char>(0xFF);
  write_bytes(tmp.dir() + "/bad.gz", bad);
  EXPECT_TRUE(throws_error([&] { data::read_text_documents(tmp.dir() + "/bad.gz"); }, {"bad.gz"}));
}

TEST(Text, SplitHoldsOutWholeDocumentsReproducibly) {
  std::vector<data::TextDocument> docs;
  for (int i = 0; i < 20; ++i) docs.push_back({"d" + std::to_string(i), std::string(10 + i, 'a')});
  std::vector<data::TextDocument> train, test, train2, test2;
  data::split_documents(docs, 0.2, 7, train, test);
  data::split_documents(docs, 0.2, 7, train2, test2);
  ASSERT_EQ(test.size(), 4u);
  ASSERT_EQ(train.size(), 16u);
  std::set<std::string> names;
  for (size_t i = 0; i < test.size(); ++i) {
    EXPECT_EQ(test[i].name, test2[i].name);
    names.insert(test[i].name);
  }
  for (const auto& d : train) EXPECT_EQ(names.count(d.name), 0u) << d.name;
  data::split_documents(docs, 0.2, 8, train2, test2);
  bool differs = false;
  for (size_t i = 0; i < test.size(); ++i) differs |= test[i].name != test2[i].name;
  EXPECT_TRUE(differs);
  EXPECT_TRUE(throws_error([&] { data::split_documents({docs[0]}, 0.5, 0, train, test); }, {"at least 2 documents"}));
  data::split_documents({docs[0], docs[1]}, 0.01, 0, train, test);  // at least one each
  EXPECT_EQ(test.size(), 1u);
  EXPECT_EQ(train.size(), 1u);
}

TEST(Text, SequencesAreClsBytesSepAndPadding) {
  const std::vector<data::TextDocument> docs = {{"a", "abcdefg"}, {"b", "\xff"}};
  const data::TextSequences s = data::text_sequences(docs, 6);  // 4 content bytes per window
  ASSERT_EQ(s.ids.shape(), (Shape{3, 6}));
  const std::vector<int32_t> want = {4, 'a' + 6, 'b' + 6, 'c' + 6, 'd' + 6, 5,
                                     4, 'e' + 6, 'f' + 6, 'g' + 6, 5,       0,
                                     4, 255 + 6, 5,       0,       0,       0};
  const std::vector<int32_t> want_mask = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(s.ids.data<int32_t>()[i], want[i]) << i;
    EXPECT_EQ(s.attention_mask.data<int32_t>()[i], want_mask[i]) << i;
  }
  EXPECT_TRUE(throws_error([&] { data::text_sequences(docs, 2); }, {"seq_len must be >= 3"}));
}

TEST(Text, MaskingRatesAndLabels) {
  std::vector<data::TextDocument> docs = {{"a", std::string(20000, 'q')}};
  docs[0].bytes += "tail";
  const data::TextSequences s = data::text_sequences(docs, 130);
  for (double span : {1.0, 4.0}) {
    data::MaskingOptions o;
    o.mean_span = span;
    Rng rng(3);
    Tensor in, lab;
    data::mask_tokens(s.ids, s.attention_mask, o, rng, in, lab);
    const int32_t* ids = s.ids.data<int32_t>();
    const int32_t* x = in.data<int32_t>();
    const int32_t* y = lab.data<int32_t>();
    const int32_t* m = s.attention_mask.data<int32_t>();
    int64_t content = 0, chosen = 0, masked = 0, kept = 0, runs = 0;
    for (int64_t i = 0; i < s.ids.numel(); ++i) {
      const bool is_content = m[i] && ids[i] >= data::byte_tokens::kByteOffset;
      content += is_content;
      if (y[i] == -100) {
        EXPECT_EQ(x[i], ids[i]) << "unchosen positions are unchanged, " << i;
        continue;
      }
      ASSERT_TRUE(is_content) << "only content bytes are chosen, " << i;
      EXPECT_EQ(y[i], ids[i]);
      ++chosen;
      masked += x[i] == data::byte_tokens::kMask;
      kept += x[i] == ids[i];
      runs += i == 0 || y[i - 1] == -100;
    }
    const double rate = double(chosen) / content;
    EXPECT_NEAR(rate, 0.15, 0.02) << "span " << span;
    EXPECT_NEAR(double(masked) / chosen, 0.8, 0.03) << "span " << span;
    EXPECT_GT(double(kept) / chosen, 0.08) << "span " << span;  // 10% kept (+ random bytes equal to the original)
    EXPECT_NEAR(double(chosen) / runs, span == 1.0 ? 1.17 : 4.0, span == 1.0 ? 0.1 : 0.8) << "mean run length";
  }
  // every sequence with content gets at least one prediction
  const data::TextSequences tiny = data::text_sequences({{"t", "ab"}}, 4);
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Rng rng(seed);
    Tensor in, lab;
    data::mask_tokens(tiny.ids, tiny.attention_mask, {}, rng, in, lab);
    int chosen = 0;
    for (int64_t i = 0; i < 4; ++i) chosen += lab.data<int32_t>()[i] != -100;
    EXPECT_GE(chosen, 1) << seed;
  }
  Rng rng(0);
  Tensor in, lab;
  data::MaskingOptions bad;
  bad.mask_prob = 1.5;
  EXPECT_TRUE(throws_error([&] { data::mask_tokens(tiny.ids, tiny.attention_mask, bad, rng, in, lab); },
                           {"mask_prob must be in (0, 1)"}));
}

TEST(Text, LabelledJsonlAndTsv) {
  const data::LabelledText j = data::read_labelled_text(kDir + "/labelled.jsonl");
  ASSERT_EQ(j.texts.size(), 4u);  // the blank line skipped
  EXPECT_EQ(j.texts[1], "two plus two");
  EXPECT_EQ(j.labels[1], "math");
  EXPECT_EQ(j.labels[3], "1");  // numbers as their JSON text
  EXPECT_EQ(j.lines, (std::vector<int64_t>{1, 2, 4, 5}));  // line 3 is blank
  const data::LabelledText t = data::read_labelled_text(kDir + "/labelled.tsv");
  ASSERT_EQ(t.texts.size(), 3u);
  EXPECT_EQ(t.labels[0], "weather");  // CRLF line ends
  EXPECT_EQ(t.texts[2], "rain all day");
  TempDir tmp;
  const auto fails = [&](const std::string& name, const std::string& content, const std::vector<std::string>& parts) {
    write_bytes(tmp.dir() + "/" + name, content);
    EXPECT_TRUE(throws_error([&] { data::read_labelled_text(tmp.dir() + "/" + name); }, parts)) << name;
  };
  fails("a.jsonl", "{\"text\": \"x\"}\n", {"a.jsonl:1", "\"label\""});
  fails("b.jsonl", "{\"text\": \"x\", \"label\": \"y\"}\n{\"text\": 5, \"label\": \"y\"}\n", {"b.jsonl:2", "\"text\""});
  fails("c.jsonl", "{\"text\": \"x\", \"label\": \"y\"\n", {"c.jsonl:1"});
  fails("d.jsonl", "\n\n", {"d.jsonl", "no labelled examples"});
  fails("e.tsv", "no tab here\n", {"e.tsv:1", "text<TAB>label"});
  fails("f.tsv", "text\t\n", {"f.tsv:1", "empty label"});
  fails("g.csv", "a,b\n", {"g.csv", ".jsonl or .tsv"});
  write_bytes(tmp.dir() + "/h.jsonl", "{\"text\": \"x\", \"label\": 0.25}\n");
  EXPECT_EQ(data::read_labelled_text(tmp.dir() + "/h.jsonl").labels[0], "0.25");
  EXPECT_TRUE(throws_error([&] { data::read_labelled_text(tmp.dir() + "/h.jsonl", 5); }, {"h.jsonl", "exceed the limit of 5"}));
  std::filesystem::create_directory(tmp.dir() + "/dir.tsv");
  EXPECT_TRUE(throws_error([&] { data::read_labelled_text(tmp.dir() + "/dir.tsv"); }, {"dir.tsv", "expected a regular file"}));
  std::filesystem::create_symlink("/dev/zero", tmp.dir() + "/zero.tsv");
  EXPECT_TRUE(throws_error([&] { data::read_labelled_text(tmp.dir() + "/zero.tsv"); }, {"zero.tsv", "expected a regular file"}));
}

TEST(Text, TaggedJsonlAndConll) {
  const data::TaggedText j = data::read_tagged_text(kDir + "/tagged.jsonl");
  ASSERT_EQ(j.size(), 3);  // the blank line skipped
  EXPECT_EQ(j.tokens[0], (std::vector<std::string>{"Ada", "wrote", "notes", "in", "1843", "."}));
  EXPECT_EQ(j.tags[0], (std::vector<std::string>{"PER", "O", "O", "O", "DATE", "O"}));
  EXPECT_EQ(j.tags[1][2], "LOC");
  EXPECT_EQ(j.tags[2], (std::vector<std::string>{"1", "2.5"}));  // numbers as their JSON text
  EXPECT_EQ(j.lines, (std::vector<int64_t>{1, 3, 4}));
  const data::TaggedText c = data::read_tagged_text(kDir + "/tagged.conll");
  ASSERT_EQ(c.size(), 2);  // -DOCSTART- skipped; runs of blank lines end one sentence
  EXPECT_EQ(c.tokens[0], (std::vector<std::string>{"Ada", "wrote"}));
  EXPECT_EQ(c.tags[0], (std::vector<std::string>{"B-PER", "O"}));  // the last column; CRLF
  EXPECT_EQ(c.tokens[1], (std::vector<std::string>{"in", "1843"}));  // tabs or spaces
  EXPECT_EQ(c.tags[1], (std::vector<std::string>{"O", "B-DATE"}));
  EXPECT_EQ(c.lines, (std::vector<int64_t>{3, 6}));
  TempDir tmp;
  const auto fails = [&](const std::string& name, const std::string& content, const std::vector<std::string>& parts) {
    write_bytes(tmp.dir() + "/" + name, content);
    EXPECT_TRUE(throws_error([&] { data::read_tagged_text(tmp.dir() + "/" + name); }, parts)) << name;
  };
  fails("a.jsonl", "{\"tokens\": [\"a\", \"b\"], \"tags\": [\"X\"]}\n", {"a.jsonl:1", "2 tokens but 1 tags"});
  fails("b.jsonl", "{\"tokens\": [\"a\"], \"tags\": [\"X\"]}\n{\"tokens\": [], \"tags\": []}\n",
        {"b.jsonl:2", "non-empty list of strings"});
  fails("c.jsonl", "{\"tokens\": [\"a\", \"\"], \"tags\": [\"X\", \"Y\"]}\n", {"c.jsonl:1", "tokens[1]: expected a non-empty string"});
  fails("d.jsonl", "{\"tokens\": [\"a\"], \"tags\": [null]}\n", {"d.jsonl:1", "tags[0]: expected a non-empty string or a number"});
  fails("e.jsonl", "{\"tokens\": [\"a\"]}\n", {"e.jsonl:1", "\"tags\""});
  fails("f.jsonl", "{\"tokens\": [\"a\"], \"tags\": [\"X\"]\n", {"f.jsonl:1"});
  fails("g.conll", "word\n", {"g.conll:1", "expected a token and its tag"});
  fails("h.conll", "\n-DOCSTART- O\n\n", {"h.conll", "no tagged sentences"});
  fails("i.txt", "a O\n", {"i.txt", ".jsonl or .conll"});
  EXPECT_TRUE(throws_error([&] { data::read_tagged_text(kDir + "/tagged.jsonl", 10); }, {"tagged.jsonl", "exceed the limit of 10"}));
  std::filesystem::create_symlink("/dev/zero", tmp.dir() + "/zero.conll");
  EXPECT_TRUE(throws_error([&] { data::read_tagged_text(tmp.dir() + "/zero.conll"); }, {"zero.conll", "expected a regular file"}));
}

}  // namespace
}  // namespace perceiver
