// Byte-level text documents, sequences, masked-LM corruption and labelled text (see text.h).
#include "perceiver/data/text.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/data/byte_tokenizer.h"

namespace perceiver::data {
namespace fs = std::filesystem;
namespace {

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The whole file, decompressed when it is gzip (zlib reads raw files unchanged); at most
// `budget` bytes.
std::string read_text_file(const std::string& path, int64_t budget) {
  std::unique_ptr<gzFile_s, GzCloser> f(gzopen(path.c_str(), "rb"));
  if (!f) throw_error("[text] ", path, ": cannot open: ", std::strerror(errno));
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const int r = gzread(f.get(), buf, sizeof(buf));
    if (r < 0) {
      int errnum = 0;
      const char* msg = gzerror(f.get(), &errnum);
      throw_error("[text] ", path, ": ", errnum == Z_ERRNO ? std::strerror(errno) : msg);
    }
    if (r == 0) break;
    if (static_cast<int64_t>(out.size()) + r > budget)
      throw_error("[text] ", path, ": the text read so far exceeds the limit of ", budget,
                  " bytes for a corpus; use a smaller corpus or a subset of its files");
    out.append(buf, static_cast<size_t>(r));
  }
  int errnum = Z_OK;
  const char* msg = gzerror(f.get(), &errnum);
  if (errnum == Z_BUF_ERROR) throw_error("[text] ", path, ": the gzip data ends early (truncated file)");
  if (errnum != Z_OK) throw_error("[text] ", path, ": corrupt gzip data: ", msg);
  return out;
}

bool wanted(const std::string& path, const std::vector<std::string>& extensions) {
  if (extensions.empty()) return true;
  for (const auto& e : extensions)
    if (ends_with(path, e)) return true;
  return false;
}

}  // namespace

std::vector<std::string> list_text_files(const std::string& path, const std::vector<std::string>& extensions) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw_error("[text] ", path, ": no such file or directory");
  std::vector<std::string> files;
  if (fs::is_regular_file(st)) {
    files.push_back(path);
  } else if (fs::is_directory(st)) {
    for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!name.empty() && name[0] == '.') {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file() && wanted(it->path().string(), extensions)) files.push_back(it->path().string());
    }
    if (ec) throw_error("[text] ", path, ": cannot list the directory: ", ec.message());
  } else {
    throw_error("[text] ", path, ": expected a text file or a directory of text files");
  }
  std::sort(files.begin(), files.end());
  // a file reachable twice (a symlink beside its target) is one document: a held-out document
  // must not also be a training document
  std::set<std::string> seen;
  files.erase(std::remove_if(files.begin(), files.end(),
                             [&](const std::string& f) {
                               std::error_code e;
                               const std::string real = fs::canonical(f, e).string();
                               return !seen.insert(e ? f : real).second;
                             }),
              files.end());
  return files;
}

namespace {
[[noreturn]] void no_text(const std::string& path, const std::vector<std::string>& extensions) {
  std::string ext;
  for (const auto& e : extensions) ext += (ext.empty() ? "" : ", ") + e;
  throw_error("[text] ", path, ": no non-empty text files", ext.empty() ? "" : " ending with " + ext);
}
}  // namespace

std::vector<TextDocument> read_text_documents(const std::string& path, const TextReadOptions& options) {
  const std::vector<std::string> files = list_text_files(path, options.extensions);
  std::vector<TextDocument> docs;
  int64_t total = 0;
  for (const std::string& f : files) {
    std::string bytes = read_text_file(f, options.max_total_bytes - total);
    total += static_cast<int64_t>(bytes.size());
    if (!bytes.empty()) docs.push_back({f, std::move(bytes)});
  }
  if (docs.empty()) no_text(path, options.extensions);
  return docs;
}

std::vector<int64_t> held_out_order(int64_t n, double test_fraction, uint64_t seed, uint64_t stream, int64_t& n_test) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  Rng rng(seed, stream);
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(static_cast<uint32_t>(i + 1))]);
  n_test = std::clamp<int64_t>(std::llround(test_fraction * static_cast<double>(n)), 1, n - 1);
  return order;
}

namespace {
// The held-out order of n documents (at least 2).
std::vector<int64_t> split_order(int64_t n, double test_fraction, uint64_t seed, int64_t& n_test) {
  check(n >= 2, "[text] holding out whole documents needs at least 2 documents, got ", n,
        " (split a large file into several, or give a directory)");
  check(test_fraction > 0 && test_fraction < 1, "[text] test_fraction must be in (0, 1), got ", test_fraction);
  return held_out_order(n, test_fraction, seed, 0x7e57ULL, n_test);
}
}  // namespace

void split_documents(std::vector<TextDocument> docs, double test_fraction, uint64_t seed,
                     std::vector<TextDocument>& train, std::vector<TextDocument>& test) {
  int64_t n_test = 0;
  const std::vector<int64_t> order = split_order(static_cast<int64_t>(docs.size()), test_fraction, seed, n_test);
  test.clear();
  train.clear();
  for (size_t k = 0; k < order.size(); ++k)
    (static_cast<int64_t>(k) < n_test ? test : train).push_back(std::move(docs[static_cast<size_t>(order[k])]));
}

// ---------------------------------------------------------------------------------------------
// Streamed text: files read in place

StreamedText index_text_files(const std::string& path, const std::vector<std::string>& extensions) {
  StreamedText t;
  for (const std::string& f : list_text_files(path, extensions)) {
    std::ifstream in(f, std::ios::binary);
    if (!in) throw_error("[text] ", f, ": cannot open: ", std::strerror(errno));
    unsigned char magic[2] = {0, 0};
    in.read(reinterpret_cast<char*>(magic), 2);
    if (in.gcount() == 2 && magic[0] == 0x1f && magic[1] == 0x8b)
      throw_error("[text] ", f, ": gzip data cannot be streamed (read in place at random offsets); decompress the "
                  "corpus first (e.g. gunzip -k), or train without data.streaming");
    std::error_code ec;
    const auto size = fs::file_size(f, ec);
    if (ec) throw_error("[text] ", f, ": cannot read the size: ", ec.message());
    if (size == 0) continue;  // as read_text_documents: empty files are no documents
    t.files.push_back(f);
    t.sizes.push_back(static_cast<int64_t>(size));
  }
  if (t.files.empty()) no_text(path, extensions);
  return t;
}

void split_streamed(const StreamedText& all, double test_fraction, uint64_t seed, StreamedText& train,
                    StreamedText& test) {
  int64_t n_test = 0;
  const std::vector<int64_t> order = split_order(static_cast<int64_t>(all.files.size()), test_fraction, seed, n_test);
  train = StreamedText{};
  test = StreamedText{};
  for (size_t k = 0; k < order.size(); ++k) {
    StreamedText& dst = static_cast<int64_t>(k) < n_test ? test : train;
    dst.files.push_back(all.files[static_cast<size_t>(order[k])]);
    dst.sizes.push_back(all.sizes[static_cast<size_t>(order[k])]);
  }
}

StreamedSequences::StreamedSequences(StreamedText text, int64_t seq_len) : text_(std::move(text)), seq_len_(seq_len) {
  check(seq_len >= 3, "[text] seq_len must be >= 3 ([CLS], at least one byte, [SEP]), got ", seq_len);
  const int64_t content = seq_len - 2;
  first_row_.reserve(text_.files.size() + 1);
  int64_t rows = 0;
  for (int64_t size : text_.sizes) {
    first_row_.push_back(rows);
    rows += (size + content - 1) / content;
  }
  first_row_.push_back(rows);
}

void StreamedSequences::read(const int64_t* rows, int64_t count, int32_t* ids, int32_t* mask) const {
  const int64_t content = seq_len_ - 2;
  std::string buf(static_cast<size_t>(content), '\0');
  std::fill(ids, ids + count * seq_len_, 0);
  std::fill(mask, mask + count * seq_len_, 0);
  for (int64_t i = 0; i < count; ++i) {
    const int64_t row = rows[i];
    check(row >= 0 && row < size(), "[text] sequence ", row, " out of range [0, ", size(), ")");
    const size_t d = static_cast<size_t>(std::upper_bound(first_row_.begin(), first_row_.end(), row) - first_row_.begin() - 1);
    const std::string& file = text_.files[d];
    const int64_t offset = (row - first_row_[d]) * content;
    const int64_t len = std::min(content, text_.sizes[d] - offset);
    std::ifstream in(file, std::ios::binary);
    if (!in) throw_error("[text] ", file, ": cannot open: ", std::strerror(errno));
    in.seekg(offset);
    in.read(buf.data(), len);
    if (in.gcount() != len)
      throw_error("[text] ", file, ": could read only ", offset + in.gcount(), " of its ", text_.sizes[d],
                  " bytes (the file changed after the corpus was indexed)");
    int32_t* r = ids + i * seq_len_;
    r[0] = byte_tokens::kCls;  // [CLS] bytes + 6 [SEP], then [PAD] (0): as text_sequences
    for (int64_t j = 0; j < len; ++j) r[1 + j] = static_cast<int32_t>(static_cast<uint8_t>(buf[j])) + byte_tokens::kByteOffset;
    r[1 + len] = byte_tokens::kSep;
    std::fill(mask + i * seq_len_, mask + i * seq_len_ + len + 2, 1);
  }
}

TextSequences text_sequences(const std::vector<TextDocument>& docs, int64_t seq_len) {
  check(seq_len >= 3, "[text] seq_len must be >= 3 ([CLS], at least one byte, [SEP]), got ", seq_len);
  const int64_t content = seq_len - 2;
  int64_t n = 0;
  for (const auto& d : docs) n += (static_cast<int64_t>(d.bytes.size()) + content - 1) / content;
  TextSequences s;
  s.ids = Tensor::zeros({n, seq_len}, DType::kI32);
  s.attention_mask = Tensor::zeros({n, seq_len}, DType::kI32);
  int32_t* ids = s.ids.data<int32_t>();
  int32_t* mask = s.attention_mask.data<int32_t>();
  int64_t row = 0;
  for (const auto& d : docs)
    for (size_t start = 0; start < d.bytes.size(); start += static_cast<size_t>(content), ++row) {
      const size_t len = std::min(static_cast<size_t>(content), d.bytes.size() - start);
      int32_t* r = ids + row * seq_len;
      int32_t* m = mask + row * seq_len;
      r[0] = byte_tokens::kCls;  // [CLS] bytes + 6 [SEP], then [PAD] (0)
      for (size_t j = 0; j < len; ++j)
        r[1 + j] = static_cast<int32_t>(static_cast<uint8_t>(d.bytes[start + j])) + byte_tokens::kByteOffset;
      r[1 + len] = byte_tokens::kSep;
      std::fill(m, m + len + 2, 1);
    }
  return s;
}

void mask_tokens(const Tensor& ids, const Tensor& attention_mask, const MaskingOptions& options, Rng& rng,
                 Tensor& inputs, Tensor& labels) {
  check(ids.dtype() == DType::kI32 && ids.rank() == 2 && attention_mask.shape() == ids.shape() &&
            attention_mask.dtype() == DType::kI32,
        "[text] mask_tokens: expected int32 ids and attention_mask (n, L), got ", shape_str(ids.shape()), " and ",
        shape_str(attention_mask.shape()));
  check(options.mask_prob > 0 && options.mask_prob < 1, "[text] mask_prob must be in (0, 1), got ", options.mask_prob);
  check(options.mean_span >= 1 && options.mean_span <= 64, "[text] mean_span must be in [1, 64], got ",
        options.mean_span);
  const int64_t n = ids.dim(0), len = ids.dim(1);
  inputs = ids.clone();
  labels = Tensor::empty({n, len}, DType::kI32);
  const int32_t* src = ids.data<int32_t>();
  const int32_t* am = attention_mask.data<int32_t>();
  int32_t* in = inputs.data<int32_t>();
  int32_t* lab = labels.data<int32_t>();
  std::fill(lab, lab + n * len, -100);
  const auto is_content = [](int32_t id) { return id >= byte_tokens::kByteOffset; };
  // A span starts at a content byte with probability p / mean_span and runs a geometric length
  // (mean mean_span): about mask_prob of the content is chosen.
  const double start_p = options.mask_prob / options.mean_span;
  const double continue_p = 1.0 - 1.0 / options.mean_span;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t* s = src + i * len;
    const int32_t* m = am + i * len;
    int32_t* x = in + i * len;
    int32_t* y = lab + i * len;
    int64_t chosen = 0, content = 0;
    for (int64_t t = 0; t < len; ++t) {
      if (!m[t] || !is_content(s[t])) continue;
      ++content;
      if (rng.uniform() >= start_p) continue;
      for (int64_t u = t; u < len && m[u] && is_content(s[u]); ++u) {  // the span
        if (y[u] < 0) y[u] = s[u], ++chosen;
        if (rng.uniform() >= continue_p) break;
      }
    }
    if (content > 0 && chosen == 0) {  // at least one prediction per sequence: a random content byte
      int64_t k = rng.below(static_cast<uint32_t>(content));
      for (int64_t t = 0; t < len; ++t)
        if (m[t] && is_content(s[t]) && k-- == 0) {
          y[t] = s[t];
          break;
        }
    }
    for (int64_t t = 0; t < len; ++t) {
      if (y[t] < 0) continue;
      const float r = rng.uniform();
      if (r < 0.8f) x[t] = byte_tokens::kMask;                                                  // 80%: [MASK]
      else if (r < 0.9f) x[t] = byte_tokens::kByteOffset + static_cast<int32_t>(rng.below(256));  // 10%: random byte
    }
  }
}

namespace {

// A regular file of at most max_bytes opened for reading (a FIFO or device would block or never
// end; a huge file would exhaust memory).
std::ifstream open_regular_file(const std::string& path, int64_t max_bytes) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw_error("[text] ", path, ": no such file");
  if (!fs::is_regular_file(st)) throw_error("[text] ", path, ": expected a regular file");
  const auto size = fs::file_size(path, ec);
  if (!ec && static_cast<int64_t>(size) > max_bytes)
    throw_error("[text] ", path, ": ", size, " bytes exceed the limit of ", max_bytes, " (data.max_bytes)");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error("[text] ", path, ": cannot open: ", std::strerror(errno));
  return in;
}

}  // namespace

LabelledText read_labelled_text(const std::string& path, int64_t max_bytes) {
  const bool jsonl = ends_with(path, ".jsonl"), tsv = ends_with(path, ".tsv");
  if (!jsonl && !tsv) throw_error("[text] ", path, ": expected a .jsonl or .tsv file of labelled text");
  std::ifstream in = open_regular_file(path, max_bytes);
  LabelledText out;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    if (tsv) {
      const size_t tab = line.rfind('\t');
      if (tab == std::string::npos) throw_error("[text] ", where, ": expected text<TAB>label");
      std::string label = line.substr(tab + 1);
      if (label.empty()) throw_error("[text] ", where, ": empty label");
      out.texts.push_back(line.substr(0, tab));
      out.labels.push_back(std::move(label));
      out.lines.push_back(line_no);
      continue;
    }
    const nlohmann::json j = parse_json(line, where, "text");
    JsonObject o(j, JsonObject::Mode::kLenient, "text", where);
    const nlohmann::json* text = o.find("text");
    const nlohmann::json* label = o.find("label");
    if (!text || !text->is_string()) throw_error("[text] ", where, ": expected a string \"text\"");
    if (!label || !(label->is_string() || label->is_number()))
      throw_error("[text] ", where, ": expected a \"label\" (a string or a number)");
    out.texts.push_back(text->get<std::string>());
    out.labels.push_back(label->is_string() ? label->get<std::string>() : label->dump());
    out.lines.push_back(line_no);
  }
  if (in.bad()) throw_error("[text] ", path, ": read error");
  if (out.texts.empty()) throw_error("[text] ", path, ": no labelled examples");
  return out;
}

namespace {

// One tag as text: a string, or a number kept as its JSON text.
std::string tag_text(const nlohmann::json& t, const std::string& where, size_t i) {
  if (t.is_string() && !t.get<std::string>().empty()) return t.get<std::string>();
  if (t.is_number()) return t.dump();
  throw_error("[text] ", where, ": tags[", i, "]: expected a non-empty string or a number, got ", t.dump());
}

void add_sentence(TaggedText& out, std::vector<std::string>& tokens, std::vector<std::string>& tags, int64_t line) {
  if (tokens.empty()) return;
  out.tokens.push_back(std::move(tokens));
  out.tags.push_back(std::move(tags));
  out.lines.push_back(line);
  tokens.clear();
  tags.clear();
}

}  // namespace

TaggedText read_tagged_text(const std::string& path, int64_t max_bytes) {
  const bool jsonl = ends_with(path, ".jsonl"), conll = ends_with(path, ".conll");
  if (!jsonl && !conll) throw_error("[text] ", path, ": expected a .jsonl or .conll file of tagged text");
  std::ifstream in = open_regular_file(path, max_bytes);
  TaggedText out;
  std::vector<std::string> tokens, tags;
  int64_t first_line = 0;  // CoNLL: the first line of the sentence being read
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = path + ":" + std::to_string(line_no);
    if (conll) {
      // "token ... tag" per line (whitespace-separated columns, the tag last); a blank line ends
      // a sentence; CoNLL-2003's -DOCSTART- lines are skipped
      std::vector<std::string> cols;
      size_t i = 0;
      while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        size_t j = i;
        while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
        if (j > i) cols.push_back(line.substr(i, j - i));
        i = j;
      }
      if (cols.empty()) {
        add_sentence(out, tokens, tags, first_line);
        continue;
      }
      if (cols[0] == "-DOCSTART-") continue;
      if (cols.size() < 2) throw_error("[text] ", where, ": expected a token and its tag (columns separated by spaces or tabs)");
      if (tokens.empty()) first_line = line_no;
      tokens.push_back(cols.front());
      tags.push_back(cols.back());
      continue;
    }
    if (line.empty()) continue;
    const nlohmann::json j = parse_json(line, where, "text");
    JsonObject o(j, JsonObject::Mode::kLenient, "text", where);
    const nlohmann::json* tok = o.find("tokens");
    const nlohmann::json* tg = o.find("tags");
    if (!tok || !tok->is_array() || tok->empty()) throw_error("[text] ", where, ": expected \"tokens\", a non-empty list of strings");
    if (!tg || !tg->is_array()) throw_error("[text] ", where, ": expected \"tags\", a list with one tag per token");
    if (tg->size() != tok->size())
      throw_error("[text] ", where, ": ", tok->size(), " tokens but ", tg->size(), " tags (one tag per token)");
    for (size_t i = 0; i < tok->size(); ++i) {
      const nlohmann::json& t = (*tok)[i];
      if (!t.is_string() || t.get<std::string>().empty())
        throw_error("[text] ", where, ": tokens[", i, "]: expected a non-empty string, got ", t.dump());
      tokens.push_back(t.get<std::string>());
      tags.push_back(tag_text((*tg)[i], where, i));
    }
    add_sentence(out, tokens, tags, line_no);
  }
  if (in.bad()) throw_error("[text] ", path, ": read error");
  add_sentence(out, tokens, tags, first_line);
  if (out.tokens.empty()) throw_error("[text] ", path, ": no tagged sentences");
  return out;
}

TaggedLayout tagged_layout(const std::vector<std::string>& tokens, int64_t seq_len) {
  check(seq_len >= 3, "[text] seq_len must be >= 3 ([CLS], at least one byte, [SEP]), got ", seq_len);
  TaggedLayout l;
  l.ids.push_back(byte_tokens::kCls);
  l.token_of.push_back(-1);
  const auto room = [&] { return static_cast<int64_t>(l.ids.size()) < seq_len - 1; };  // [SEP] stays
  for (size_t k = 0; k < tokens.size() && room(); ++k) {
    if (k > 0) {
      if (static_cast<int64_t>(l.ids.size()) >= seq_len - 2) break;  // no room for a byte after the space
      l.ids.push_back(byte_tokens::kByteOffset + ' ');
      l.token_of.push_back(-1);
    }
    for (int32_t id : tokenize_bytes(tokens[k])) {
      if (!room()) break;
      l.ids.push_back(id);
      l.token_of.push_back(static_cast<int32_t>(k));
    }
    ++l.kept;
  }
  l.ids.push_back(byte_tokens::kSep);
  l.token_of.push_back(-1);
  return l;
}

}  // namespace perceiver::data
