// Byte-level text for the language Perceiver: documents read from text files (raw or gzip),
// held out whole, cut into fixed-length sequences of the language-perceiver's byte ids
// (data/byte_tokenizer.h: byte b -> b + 6; [CLS] content [SEP], [PAD] after), and the masked-LM
// corruption of a batch (random bytes or spans). Labelled text (JSONL or TSV of text and label)
// for sequence classification; tagged text (JSONL or CoNLL) for token classification.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "perceiver/core/random.h"
#include "perceiver/core/tensor.h"

namespace perceiver::data {

struct TextDocument {
  std::string name;   // the file's path
  std::string bytes;  // its content (decompressed)
};

struct TextReadOptions {
  // File names must end with one of these (".txt", ".rst.gz", ...); empty: every regular file.
  std::vector<std::string> extensions;
  int64_t max_total_bytes = int64_t(1) << 31;  // refuse corpora larger than this (2 GiB)
};

// A file, or every regular file under a directory (recursive, sorted by path, hidden files
// skipped, a file reached twice through symlinks read once), each one document; ".gz" files are decompressed. Empty files are skipped; errors
// name the file (unreadable, corrupt gzip, total over the limit, nothing to read).
std::vector<TextDocument> read_text_documents(const std::string& path, const TextReadOptions& options = {});

// The files a text corpus path names: the file itself, or every regular file under a directory
// (recursive, sorted by path, hidden files and folders skipped, a file reached twice through
// symlinks listed once), keeping those ending with one of `extensions` (all when empty).
std::vector<std::string> list_text_files(const std::string& path, const std::vector<std::string>& extensions = {});

// A seeded held-out split of n >= 2 items: a shuffle of 0..n-1 by Rng(seed, stream); the first
// n_test = clamp(round(test_fraction n), 1, n - 1) are the test items. The one shuffle behind the
// document splits below and the labelled/tagged text splits of the trainer.
std::vector<int64_t> held_out_order(int64_t n, double test_fraction, uint64_t seed, uint64_t stream, int64_t& n_test);

// Whole documents held out: a seeded shuffle of the documents; the first
// max(1, round(test_fraction * n)) are the test set, the rest the training set (at least one each).
void split_documents(std::vector<TextDocument> docs, double test_fraction, uint64_t seed,
                     std::vector<TextDocument>& train, std::vector<TextDocument>& test);

// Token sequences (n, L) int32: every document cut into consecutive windows of L - 2 bytes, each
// [CLS] bytes [SEP] and padded with [PAD]; attention_mask (n, L) int32 (1 on real tokens).
struct TextSequences {
  Tensor ids;
  Tensor attention_mask;
  int64_t size() const { return ids.defined() ? ids.dim(0) : 0; }
};
TextSequences text_sequences(const std::vector<TextDocument>& docs, int64_t seq_len);

// Streamed text (corpora larger than memory): the corpus files are indexed by size and read in
// place, a sequence at a time, when a batch needs it. Only the file list is held. The same
// documents, split and sequences as read_text_documents + split_documents + text_sequences (a
// streamed run trains exactly as an in-memory one); gzip files are refused (random access).
struct StreamedText {
  std::vector<std::string> files;
  std::vector<int64_t> sizes;  // bytes, all > 0
};
StreamedText index_text_files(const std::string& path, const std::vector<std::string>& extensions = {});
void split_streamed(const StreamedText& all, double test_fraction, uint64_t seed, StreamedText& train,
                    StreamedText& test);

class StreamedSequences {
 public:
  StreamedSequences() = default;
  StreamedSequences(StreamedText text, int64_t seq_len);
  int64_t size() const { return first_row_.empty() ? 0 : first_row_.back(); }
  int64_t seq_len() const { return seq_len_; }
  // Sequences rows[0 .. count) into ids and mask (count, seq_len) int32, as text_sequences lays
  // them out. A file that shrank since indexing is an error naming it.
  void read(const int64_t* rows, int64_t count, int32_t* ids, int32_t* mask) const;
  const StreamedText& text() const { return text_; }

 private:
  StreamedText text_;
  int64_t seq_len_ = 0;
  std::vector<int64_t> first_row_;  // first sequence of each file, then the total
};

struct MaskingOptions {
  double mask_prob = 0.15;  // the share of content bytes (not [CLS]/[SEP]/[PAD]) to predict
  double mean_span = 1.0;   // 1: single bytes; > 1: spans of geometric length with this mean
};

// The masked-LM corruption of sequences ids (n, L) with their attention mask: about mask_prob of
// the content bytes are chosen (at least one per sequence with content), as single bytes or
// spans; of those, 80% become [MASK], 10% a random byte, 10% stay. inputs: the corrupted ids;
// labels: the original id at chosen positions and -100 elsewhere (ignored by the loss).
void mask_tokens(const Tensor& ids, const Tensor& attention_mask, const MaskingOptions& options, Rng& rng,
                 Tensor& inputs, Tensor& labels);

// Labelled text: a .jsonl file of {"text": ..., "label": ...} objects (label a string or a
// number, kept as its JSON text) or a .tsv file of text<TAB>label lines. Only regular files of at
// most max_bytes are read. Errors name the file and line.
struct LabelledText {
  std::vector<std::string> texts;
  std::vector<std::string> labels;
  std::vector<int64_t> lines;  // the line of each example in its file (for error messages)
  int64_t size() const { return static_cast<int64_t>(texts.size()); }
};
LabelledText read_labelled_text(const std::string& path, int64_t max_bytes = int64_t(1) << 31);

// Tagged text for token classification: sentences of (token, tag) pairs, from a .jsonl file of
// {"tokens": [...], "tags": [...]} objects (one tag per token; a tag is a string or a number, kept
// as its JSON text) or a .conll file (one "token ... tag" line per token, whitespace-separated
// columns with the tag last, a blank line between sentences, -DOCSTART- lines skipped). Tokens
// are non-empty. Only regular files of at most max_bytes are read; errors name the file and line.
struct TaggedText {
  std::vector<std::vector<std::string>> tokens;
  std::vector<std::vector<std::string>> tags;
  std::vector<int64_t> lines;  // the (first) line of each sentence in its file
  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
};
TaggedText read_tagged_text(const std::string& path, int64_t max_bytes = int64_t(1) << 31);

// The byte layout of a tagged sentence, shared by training and `perceiver tag`: [CLS], the
// tokens' ids (tokenize_bytes) joined by single spaces, [SEP] (no padding). token_of[i] is the
// token position i belongs to, -1 for [CLS], the spaces and [SEP]. Tokens that do not fit in
// seq_len ids are cut (a token is never started without room for one of its ids); kept counts
// the tokens with at least one id.
struct TaggedLayout {
  std::vector<int32_t> ids;
  std::vector<int32_t> token_of;
  int64_t kept = 0;
};
TaggedLayout tagged_layout(const std::vector<std::string>& tokens, int64_t seq_len);

}  // namespace perceiver::data
