// Run-config tasks: data, batches, loss and evaluation for every kind of model (see task.h).
#include "perceiver/train/task.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "perceiver/autograd/functions.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/allocator.h"
#include "perceiver/core/error.h"
#include "perceiver/data/augment.h"
#include "perceiver/data/byte_tokenizer.h"
#include "perceiver/ops/elementwise.h"
#include "perceiver/models/perceiver_io/perceiver_io.h"
#include "perceiver/models/registry.h"
#include "perceiver/nn/layers.h"
#include "perceiver/train/datasets.h"

namespace perceiver::train {
namespace {

using models::TensorMap;
namespace pio = models::perceiver_io;

std::string join(const std::vector<std::string>& v, size_t max = SIZE_MAX) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < max; ++i) out += (i ? ", " : "") + v[i];
  return out;
}

// Rows idx[0..b) of a per-example tensor (n, ...).
Tensor gather_rows(const Tensor& t, const int64_t* idx, int64_t b) {
  Shape s = t.shape();
  const int64_t row = t.numel() / s[0] * static_cast<int64_t>(dtype_size(t.dtype()));
  s[0] = b;
  Tensor out = Tensor::empty(s, t.dtype());
  const auto* src = static_cast<const uint8_t*>(t.cdata());
  auto* dst = static_cast<uint8_t*>(out.raw_data());
  for (int64_t i = 0; i < b; ++i) std::copy(src + idx[i] * row, src + (idx[i] + 1) * row, dst + i * row);
  return out;
}

const pio::PerceiverIO& perceiver_io_of(const models::Model& m) { return dynamic_cast<const pio::PerceiverIO&>(m); }

// The distinct labels in order: numerically when every label is a number ("2" before "10"),
// else as strings.
std::vector<std::string> sorted_classes(std::vector<std::string> labels) {
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  std::vector<std::pair<double, std::string>> numeric;
  for (const std::string& l : labels) {
    char* end = nullptr;
    const double x = std::strtod(l.c_str(), &end);
    if (l.empty() || end != l.c_str() + l.size() || !std::isfinite(x)) return labels;
    numeric.emplace_back(x, l);
  }
  std::stable_sort(numeric.begin(), numeric.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = numeric[i].second;
  return labels;
}

// The labelled text of a file as token ids (n, L) with the HF tokenizer (truncation, padding)
// and class ids by `classes`.
// With no classes (regression), labels are float32 numbers.
void encode_labelled(const data::LabelledText& t, int64_t seq_len, const std::vector<std::string>& classes,
                     const std::string& file, Tensor& ids, Tensor& mask, Tensor& labels) {
  const int64_t n = static_cast<int64_t>(t.texts.size());
  ids = Tensor::zeros({n, seq_len}, DType::kI32);
  mask = Tensor::zeros({n, seq_len}, DType::kI32);
  labels = Tensor::empty({n}, classes.empty() ? DType::kF32 : DType::kI32);
  for (int64_t i = 0; i < n; ++i) {
    const data::ByteEncoding e = data::encode_bytes(t.texts[i], seq_len, true);
    std::copy(e.input_ids.begin(), e.input_ids.end(), ids.data<int32_t>() + i * seq_len);
    std::copy(e.attention_mask.begin(), e.attention_mask.end(), mask.data<int32_t>() + i * seq_len);
    if (classes.empty()) {  // regression target: the whole label is one finite number
      const std::string& v = t.labels[i];
      char* end = nullptr;
      const double x = std::strtod(v.c_str(), &end);
      if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(x) || std::fabs(x) > 3.0e38)
        throw_error("[data] ", file, ":", t.lines[i], ": the label \"", v, "\" is not a number; the model has num_labels 1 "
                    "(regression), so every label must be a finite number");
      labels.f32()[i] = static_cast<float>(x);
      continue;
    }
    const auto it = std::find(classes.begin(), classes.end(), t.labels[i]);
    if (it == classes.end())
      throw_error("[data] ", file, ":", t.lines[i], ": the label \"", t.labels[i], "\" is not one of the ",
                  classes.size(), " classes (", classes.size() <= 8 ? join(classes) : join(classes, 8) + ", ...",
                  "): the model's id2label, or the labels of the training examples");
    labels.data<int32_t>()[i] = static_cast<int32_t>(it - classes.begin());
  }
}

// Tagged sentences as token ids (n, L) and a class id per position (n, L): [CLS], the tokens'
// bytes joined by single spaces, [SEP], [PAD]; every byte (id) of a token carries its tag, the
// spaces, [CLS], [SEP] and padding -100 (not predicted). Tokens past L - 2 ids are cut.
void encode_tagged(const data::TaggedText& t, int64_t seq_len, const std::vector<std::string>& classes,
                   const std::string& file, Tensor& ids, Tensor& mask, Tensor& labels) {
  const int64_t n = t.size();
  ids = Tensor::zeros({n, seq_len}, DType::kI32);
  mask = Tensor::zeros({n, seq_len}, DType::kI32);
  labels = Tensor::empty({n, seq_len}, DType::kI32);
  std::fill_n(labels.data<int32_t>(), n * seq_len, -100);
  for (int64_t i = 0; i < n; ++i) {
    int32_t* id = ids.data<int32_t>() + i * seq_len;
    int32_t* y = labels.data<int32_t>() + i * seq_len;
    const auto& tokens = t.tokens[static_cast<size_t>(i)];
    const auto& tags = t.tags[static_cast<size_t>(i)];
    std::vector<int32_t> class_of(tokens.size());  // every tag is checked, also past the cut
    for (size_t k = 0; k < tokens.size(); ++k) {
      const auto it = std::find(classes.begin(), classes.end(), tags[k]);
      if (it == classes.end())
        throw_error("[data] ", file, ":", t.lines[static_cast<size_t>(i)], ": the tag \"", tags[k], "\" of token ", k,
                    " (\"", tokens[k], "\") of the sentence is not one of the ", classes.size(), " classes (",
                    classes.size() <= 8 ? join(classes) : join(classes, 8) + ", ...",
                    "): the model's id2label, or the tags of the training data");
      class_of[k] = static_cast<int32_t>(it - classes.begin());
    }
    const data::TaggedLayout l = data::tagged_layout(tokens, seq_len);
    for (size_t p = 0; p < l.ids.size(); ++p) {
      id[p] = l.ids[p];
      if (l.token_of[p] >= 0) y[p] = class_of[static_cast<size_t>(l.token_of[p])];
    }
    std::fill_n(mask.data<int32_t>() + i * seq_len, l.ids.size(), 1);
  }
}

// Examples of a file split into training and test examples: test_file is the test set, or the
// first max(1, round(test_fraction n)) of a seeded shuffle of `dir`'s examples (at least one each).
// read(path, max_bytes) reads a file; move_one(from, i, to) moves example i.
template <typename Examples, typename Read, typename MoveOne>
void split_examples(const DataConfig& c, Read read, MoveOne move_one, Examples& train, Examples& test) {
  Examples all = read(c.dir, c.max_bytes);
  if (!c.test_file.empty()) {
    train = std::move(all);
    test = read(c.test_file, c.max_bytes);
    return;
  }
  const int64_t n = all.size();
  check(n >= 2, "[data] ", c.dir, ": holding out a test share needs at least 2 examples, got ", n);
  int64_t n_test = 0;
  const std::vector<int64_t> order = data::held_out_order(n, c.test_fraction, c.split_seed, 0x1abe1ULL, n_test);
  for (int64_t k = 0; k < n; ++k) move_one(all, order[static_cast<size_t>(k)], k < n_test ? test : train);
}

// Tagged sentences (tagged_text) split into training and test sentences.
void split_tagged(const DataConfig& c, data::TaggedText& train, data::TaggedText& test) {
  split_examples(c, data::read_tagged_text, [](data::TaggedText& from, int64_t i, data::TaggedText& to) {
    to.tokens.push_back(std::move(from.tokens[static_cast<size_t>(i)]));
    to.tags.push_back(std::move(from.tags[static_cast<size_t>(i)]));
    to.lines.push_back(from.lines[static_cast<size_t>(i)]);
  }, train, test);
}

// Labelled text (labelled_text) split into training and test examples.
void split_labelled(const DataConfig& c, data::LabelledText& train, data::LabelledText& test) {
  split_examples(c, data::read_labelled_text, [](data::LabelledText& from, int64_t i, data::LabelledText& to) {
    to.texts.push_back(std::move(from.texts[static_cast<size_t>(i)]));
    to.labels.push_back(std::move(from.labels[static_cast<size_t>(i)]));
    to.lines.push_back(from.lines[static_cast<size_t>(i)]);
  }, train, test);
}

Tensor first_rows(const Tensor& t, int64_t limit) {
  return limit > 0 && limit < t.dim(0) ? t.slice0(0, limit) : t;
}

// The window [top, top + h) x [left, left + w) of an image, mirrored left-right when flip.
data::RgbImage crop_image(const data::RgbImage& img, int64_t top, int64_t left, int64_t h, int64_t w, bool flip) {
  std::vector<uint8_t> px(static_cast<size_t>(h * w * 3));
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        px[static_cast<size_t>((y * w + x) * 3 + c)] = img.at(top + y, left + (flip ? w - 1 - x : x), c);
  return data::make_rgb_image(h, w, std::move(px));
}

// Adds flow predictions (B, H, W, 2) in pixels against targets to r: count = known pixels,
// loss = mean end-point error, correct = under 3 px, correct_strict = under 1 px.
void accumulate_flow_errors(const Tensor& pred, const Tensor& target, EvalResult& r) {
  data::FlowErrors e;
  data::add_flow_errors(pred, target, e);
  const int64_t n = r.count + e.known;
  r.loss = n ? (r.loss * static_cast<double>(r.count) + e.epe_sum) / static_cast<double>(n) : 0.0;
  r.count = n;
  r.correct += e.under3;
  r.correct_strict += e.under1;
}

}  // namespace

double EvalResult::bits_per_prediction() const { return loss / std::log(2.0); }

double EvalResult::zero_flow_epe() const {
  const auto it = sums.find("zero_flow_epe");
  return it == sums.end() || count == 0 ? 0.0 : it->second / static_cast<double>(count);
}

double EvalResult::mean_squared_error(const std::string& name) const {
  const auto se = sums.find(name + "_se"), n = sums.find(name + "_n");
  return se != sums.end() && n != sums.end() && n->second > 0 ? se->second / n->second : 0.0;
}

void EvalResult::merge(const EvalResult& o) {
  const int64_t n = count + o.count;
  loss = n ? (loss * static_cast<double>(count) + o.loss * static_cast<double>(o.count)) / static_cast<double>(n) : 0.0;
  count = n;
  correct += o.correct;
  correct_strict += o.correct_strict;
  for (const auto& [k, v] : o.sums) sums[k] += v;
  num_classes = std::max(num_classes, o.num_classes);
  regression = regression || o.regression;
  if (confusion.empty()) confusion = o.confusion;
  else if (confusion.size() == o.confusion.size())
    for (size_t i = 0; i < confusion.size(); ++i) confusion[i] += o.confusion[i];
}

void accumulate_predictions(const Tensor& logits, const Tensor& labels, EvalResult& r) {
  const int64_t k = logits.dim(-1), rows = logits.numel() / k;
  check(labels.dtype() == DType::kI32 && labels.numel() == rows, "[evaluate] expected ", rows,
        " int32 labels for logits ", shape_str(logits.shape()), ", got ", shape_str(labels.shape()));
  const float* p = logits.f32();
  const int32_t* y = labels.data<int32_t>();
  const bool confusion = static_cast<int64_t>(r.confusion.size()) == k * k;
  double nll = r.loss * static_cast<double>(r.count);
  for (int64_t i = 0; i < rows; ++i) {
    if (y[i] < 0) continue;
    const float* row = p + i * k;
    int64_t best = 0;
    double mx = row[0];
    for (int64_t j = 1; j < k; ++j)
      if (row[j] > row[best]) best = j;
    mx = row[best];
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += std::exp(static_cast<double>(row[j]) - mx);
    // -log softmax(row)[y] = log(sum exp(row - max)) - (row[y] - max)
    if (y[i] < k) nll += std::log(sum) - (static_cast<double>(row[y[i]]) - mx);
    r.correct += best == y[i];
    r.count += 1;
    if (confusion && y[i] < k) r.confusion[y[i] * k + best] += 1;
  }
  r.loss = r.count ? nll / static_cast<double>(r.count) : 0.0;
}

void accumulate_squared_errors(const Tensor& predictions, const Tensor& targets, EvalResult& r) {
  check(targets.dtype() == DType::kF32 && targets.numel() == predictions.numel(), "[evaluate] expected ",
        predictions.numel(), " float32 targets, got ", shape_str(targets.shape()));
  double sum = r.loss * static_cast<double>(r.count);
  for (int64_t i = 0; i < predictions.numel(); ++i) {
    const double d = static_cast<double>(predictions.f32()[i]) - targets.f32()[i];
    sum += d * d;
  }
  r.regression = true;
  r.count += predictions.numel();
  r.loss = sum / static_cast<double>(r.count);
}

Task::Task(const RunConfig& config, Mode mode) : config_(config), model_config_(config.model) {
  const DataConfig& c = config.data;
  const uint64_t seed = config.train.seed;
  const bool train = mode == Mode::kTrain;
  // evaluation loads weights over the model: no initialisation
  std::optional<nn::SkipInitGuard> no_init;
  if (!train) no_init.emplace();
  kind_ = c.format == "text"                                           ? Kind::kMaskedLM
          : c.format == "labelled_text"                                ? Kind::kSequenceClassifier
          : c.format == "tagged_text"                                  ? Kind::kTokenClassifier
          : c.format == "flow_synth" || c.format == "flow_folder"    ? Kind::kFlow
          : c.format == "moving_av"                                    ? Kind::kAutoencoder
                                                                       : Kind::kClassifier;
  if (kind_ == Kind::kFlow) {
    init_flow(train);
    return;
  }
  if (kind_ == Kind::kAutoencoder) {
    init_av(train);
    return;
  }
  if (kind_ == Kind::kClassifier) {
    test_set_ = example_source(config, false);
    train_set_ = train ? example_source(config, true) : test_set_;
    check(train_set_.size() > 0, "[train] ", c.dir, ": the training set is empty");
    check(test_set_.size() > 0, "[train] ", c.dir, ": the test set is empty");
    check(test_set_.example_shape() == train_set_.example_shape(), "[train] ", c.dir, ": test examples ",
          shape_str(test_set_.example_shape()), " differ from training examples ", shape_str(train_set_.example_shape()));
    class_names_ = test_set_.class_names();
    // a mel filterbank is laid out for one sample rate: the data's
    if (c.format == "wav" && config.model.value("input_projection_init", "") == "mel") {
      const double model_rate = config.model.value("sample_rate", 0.0);
      check(model_rate == static_cast<double>(c.sample_rate), "[config] model.sample_rate (", model_rate,
            " Hz, where the mel filterbank is laid out) must equal data.sample_rate (", c.sample_rate, " Hz)");
    }
    const bool augment = c.max_shift > 0 || c.hflip || c.erase_prob > 0;
    check(!augment || train_set_.example_shape().size() == 2 || c.format == "wav", "[train] data.max_shift and "
          "data.hflip (and data.erase_prob) augment grey images (H, W), got examples ", shape_str(train_set_.example_shape()));
    {
      AllocationBudget budget(machine_memory_bytes(), "building the model of this run config");
      auto m = models::make_image_classifier(config.model, seed);
      classifier_ = m.get();
      model_ = std::move(m);
    }
    const Shape example = train_set_.example_shape();
    Shape takes = classifier_->image_size();  // the example shape the model takes
    if (classifier_->in_channels() > 1 || (example.size() == takes.size() + 1 && example.back() == 1))
      takes.push_back(classifier_->in_channels());
    check(takes == example, "[train] the data's examples are ", shape_str(example), " but the model takes ",
          shape_str(takes), " (model.image_size ", shape_str(classifier_->image_size()), ", in_channels ",
          classifier_->in_channels(), ")");
    const int64_t classes = static_cast<int64_t>(train_set_.class_names().size());
    check(classifier_->num_classes() >= classes, "[train] model.num_classes must be >= ", classes,
          " (the data's classes), got ", classifier_->num_classes());
    num_classes_ = classifier_->num_classes();
    train_size_ = train ? train_set_.size() : 0;
    test_size_ = test_set_.size();
    return;
  }

  // Text: the model is an HF Perceiver IO text model named by its hub config.
  const char* want = kind_ == Kind::kMaskedLM          ? "PerceiverForMaskedLM"
                     : kind_ == Kind::kTokenClassifier ? "PerceiverForTokenClassification"
                                                       : "PerceiverForSequenceClassification";
  const nlohmann::json* hub = config.model.contains("hub_config") ? &config.model.at("hub_config") : nullptr;
  if (config.model.value("type", "") != "perceiver_io" || !hub || models::architecture_of(*hub, "model") != want)
    throw_error("[config] data.format \"", c.format, "\" trains a ", want, ": expected \"model\": {\"type\": "
                "\"perceiver_io\", \"hub_config\": {\"architectures\": [\"", want, "\"], ...}}");
  const pio::HfPerceiverConfig hc = pio::parse_hf_config(*hub, "model.hub_config");
  check(c.seq_len <= hc.max_position_embeddings, "[config] data.seq_len (", c.seq_len, ") exceeds the model's ",
        "max_position_embeddings (", hc.max_position_embeddings, ")");
  check(hc.vocab_size >= data::byte_tokens::kVocabSize, "[config] model.hub_config.vocab_size must be at least ",
        data::byte_tokens::kVocabSize, " (the byte ids), got ", hc.vocab_size);
  decoder_outputs_ = hc.max_position_embeddings;
  // The data (a budget: a corpus too large for the machine is an error, not the OOM killer).
  AllocationBudget data_budget(machine_memory_bytes(), "the text data of this run config");
  if (kind_ == Kind::kMaskedLM && c.streaming) {
    // files read in place a sequence at a time: the same split and sequences as in memory
    data::StreamedText all = data::index_text_files(c.dir, c.extensions), tr, te;
    data::split_streamed(all, c.test_fraction, c.split_seed, tr, te);
    split_ = {{"format", "text"}, {"seq_len", c.seq_len}, {"train_limit", c.train_limit}, {"test_limit", c.test_limit},
              {"train", tr.files}, {"test", te.files}};
    if (train) train_stream_ = data::StreamedSequences(std::move(tr), c.seq_len);
    test_stream_ = data::StreamedSequences(std::move(te), c.seq_len);
  } else if (kind_ == Kind::kMaskedLM) {
    data::TextReadOptions ro;
    ro.extensions = c.extensions;
    ro.max_total_bytes = c.max_bytes;
    std::vector<data::TextDocument> train_docs, test_docs;
    data::split_documents(data::read_text_documents(c.dir, ro), c.test_fraction, c.split_seed, train_docs, test_docs);
    split_ = {{"format", "text"}, {"seq_len", c.seq_len}, {"train_limit", c.train_limit}, {"test_limit", c.test_limit},
              {"train", nlohmann::json::array()}, {"test", nlohmann::json::array()}};
    for (const auto& d : train_docs) split_["train"].push_back(d.name);
    for (const auto& d : test_docs) split_["test"].push_back(d.name);
    if (train) {
      const data::TextSequences tr = data::text_sequences(train_docs, c.seq_len);
      train_ids_ = first_rows(tr.ids, c.train_limit);
      train_mask_ = first_rows(tr.attention_mask, c.train_limit);
    }
    train_docs.clear();
    const data::TextSequences te = data::text_sequences(test_docs, c.seq_len);
    test_ids_ = first_rows(te.ids, c.test_limit);
    test_mask_ = first_rows(te.attention_mask, c.test_limit);
  } else {
    data::LabelledText tr, te;
    data::TaggedText tagged_tr, tagged_te;
    // the labels (tags) that make the class list: those of data.dir (both sides of a seeded
    // split, so a rare label drawn only into the test share is still a class); a separate
    // test_file must not bring new ones
    std::vector<std::string> labels_seen;
    const bool split_of_dir = c.test_file.empty();
    if (kind_ == Kind::kTokenClassifier) {
      split_tagged(c, tagged_tr, tagged_te);
      for (const auto& tags : tagged_tr.tags) labels_seen.insert(labels_seen.end(), tags.begin(), tags.end());
      if (split_of_dir)
        for (const auto& tags : tagged_te.tags) labels_seen.insert(labels_seen.end(), tags.begin(), tags.end());
    } else {
      split_labelled(c, tr, te);
      labels_seen = tr.labels;
      if (split_of_dir) labels_seen.insert(labels_seen.end(), te.labels.begin(), te.labels.end());
    }
    // HF: num_labels 1 is regression (MSE); a tagger with one tag is a plain (if useless) classifier
    regression_ = kind_ == Kind::kSequenceClassifier && hc.num_labels == 1;
    std::vector<std::string> classes;
    if (!regression_) {
      if (!hc.id2label.empty()) {
        classes = hc.id2label;  // the hub config names the classes: ids follow it
      } else {
        classes = sorted_classes(labels_seen);
        check(hc.num_labels >= static_cast<int64_t>(classes.size()), "[train] the model's num_labels (",
              hc.num_labels, ") is less than the data's ", classes.size(), " classes");
        for (int64_t i = static_cast<int64_t>(classes.size()); i < hc.num_labels; ++i)
          classes.push_back("LABEL_" + std::to_string(i));  // HF's names for unnamed ids
        // the model (and so its export and the checkpoint's config) carries the class names
        nlohmann::json names = nlohmann::json::object();
        for (size_t i = 0; i < classes.size(); ++i) names[std::to_string(i)] = classes[i];
        model_config_["hub_config"]["id2label"] = names;
      }
    }
    class_names_ = classes;
    const std::string test_source = c.test_file.empty() ? c.dir : c.test_file;
    if (kind_ == Kind::kTokenClassifier) {
      if (train) encode_tagged(tagged_tr, c.seq_len, classes, c.dir, train_ids_, train_mask_, train_labels_);
      encode_tagged(tagged_te, c.seq_len, classes, test_source, test_ids_, test_mask_, test_labels_);
    } else {
      if (train) encode_labelled(tr, c.seq_len, classes, c.dir, train_ids_, train_mask_, train_labels_);
      encode_labelled(te, c.seq_len, classes, test_source, test_ids_, test_mask_, test_labels_);
    }
    if (train) {
      train_ids_ = first_rows(train_ids_, c.train_limit);
      train_mask_ = first_rows(train_mask_, c.train_limit);
      train_labels_ = first_rows(train_labels_, c.train_limit);
    }
    test_ids_ = first_rows(test_ids_, c.test_limit);
    test_mask_ = first_rows(test_mask_, c.test_limit);
    test_labels_ = first_rows(test_labels_, c.test_limit);
    num_classes_ = regression_ ? 0 : hc.num_labels;
  }
  {
    AllocationBudget budget(machine_memory_bytes(), "building the model of this run config");
    model_ = models::create_model(model_config_.at("hub_config"), "model.hub_config", seed);
  }
  if (c.streaming) {
    const auto limited = [](int64_t n, int64_t limit) { return limit > 0 ? std::min(n, limit) : n; };
    train_size_ = train ? limited(train_stream_.size(), c.train_limit) : 0;
    test_size_ = limited(test_stream_.size(), c.test_limit);
  } else {
    train_size_ = train ? train_ids_.dim(0) : 0;
    test_size_ = test_ids_.dim(0);
  }
  check((!train || train_size_ > 0) && test_size_ > 0, "[train] ", c.dir, ": the training or test set is empty");
}

void Task::init_flow(bool train) {
  const DataConfig& c = config_.data;
  const char* want = "PerceiverForOpticalFlow";
  const nlohmann::json* hub = config_.model.contains("hub_config") ? &config_.model.at("hub_config") : nullptr;
  if (config_.model.value("type", "") != "perceiver_io" || !hub || models::architecture_of(*hub, "model") != want)
    throw_error("[config] data.format \"", c.format, "\" trains a ", want, ": expected \"model\": {\"type\": "
                "\"perceiver_io\", \"hub_config\": {\"architectures\": [\"", want, "\"], \"train_size\": [H, W], ...}}");
  const pio::HfPerceiverConfig hc = pio::parse_hf_config(*hub, "model.hub_config");
  flow_h_ = hc.train_size[0];
  flow_w_ = hc.train_size[1];
  const auto limited = [](int64_t n, int64_t limit) { return limit > 0 ? std::min(n, limit) : n; };
  AllocationBudget data_budget(machine_memory_bytes(), "the optical-flow data of this run config");
  if (c.format == "flow_synth") {
    data::FlowAssetOptions ao;
    ao.max_sprites = c.max_assets;
    ao.background_side = std::max<int64_t>(192, 2 * std::max(flow_h_, flow_w_));
    ao.sprite_side = std::max<int64_t>(32, std::min(flow_h_, flow_w_));  // sprites cover at most 0.6 of the shorter side
    flow_assets_ = std::make_shared<const data::FlowAssets>(data::load_flow_assets(c.dir, ao));
    flow_synth_.height = flow_h_;
    flow_synth_.width = flow_w_;
    flow_synth_.min_sprites = static_cast<int>(c.min_sprites);
    flow_synth_.max_sprites = static_cast<int>(c.max_sprites);
    flow_synth_.sprite_translation = c.sprite_translation;
    flow_synth_.background_translation = c.background_translation;
    flow_synth_.sprite_rotation = c.sprite_rotation;
    flow_synth_.sprite_scale = c.sprite_scale;
    flow_synth_.background_rotation = c.background_rotation;
    flow_synth_.background_scale = c.background_scale;
    flow_synth_.texture = c.texture_final;  // the test pairs' (training pairs: train_batch's curriculum)
    flow_synth_.texture_cell = c.texture_cell;
    data::check_flow_synth_options(flow_synth_);
    // the held-out pairs: pair i drawn by a generator of its own, the same in every run
    const int64_t n_test = limited(c.test_pairs, c.test_limit);
    for (int64_t i = 0; i < n_test; ++i) {
      Rng rng(c.split_seed, 0xf1070000ULL + static_cast<uint64_t>(i));
      data::FlowPair p = data::synthesize_flow_pair(*flow_assets_, flow_synth_, rng);
      flow_test_.push_back({std::move(p.frame1), std::move(p.frame2), p.flow});
    }
    train_size_ = train ? limited(c.train_pairs, c.train_limit) : 0;
  } else {
    const std::vector<data::FlowPairFiles> files = data::list_flow_pairs(c.dir);
    const int64_t n = static_cast<int64_t>(files.size());
    check(n >= 2, "[data] ", c.dir, ": holding out a test share needs at least 2 pairs, got ", n);
    int64_t n_test = 0;
    const std::vector<int64_t> order = data::held_out_order(n, c.test_fraction, c.split_seed, 0xf1011ULL, n_test);
    for (int64_t k = 0; k < n; ++k) {
      const bool is_test = k < n_test;
      if (!train && !is_test) continue;
      std::vector<data::FlowExample>& to = is_test ? flow_test_ : flow_train_;
      if (static_cast<int64_t>(to.size()) >= (is_test ? limited(n, c.test_limit) : limited(n, c.train_limit))) continue;
      const data::FlowPairFiles& f = files[static_cast<size_t>(order[static_cast<size_t>(k)])];
      data::FlowExample e = data::read_flow_pair(f);
      check(e.frame1.height >= flow_h_ && e.frame1.width >= flow_w_, "[data] ", f.frame1, ": the pair is ", e.frame1.height,
            " x ", e.frame1.width, ", smaller than the model's train_size ", flow_h_, " x ", flow_w_);
      to.push_back(std::move(e));
    }
    train_size_ = static_cast<int64_t>(flow_train_.size());
  }
  test_size_ = static_cast<int64_t>(flow_test_.size());
  check((!train || train_size_ > 0) && test_size_ > 0, "[train] ", c.dir, ": the training or test set is empty");
  AllocationBudget budget(machine_memory_bytes(), "building the model of this run config");
  model_ = models::create_model(*hub, "model.hub_config", config_.train.seed);
}

// Pairs as a batch: inputs (B, 2, 27, h, w) patch features of a window of the model's size
// (random with augment, else centred; flipped left-right with data.hflip at p = 0.5, u negated),
// target (B, h, w, 2) in pixels.
TensorMap Task::flow_batch(const std::vector<const data::FlowExample*>& pairs, bool augment, Rng* rng) const {
  const int64_t b = static_cast<int64_t>(pairs.size()), h = flow_h_, w = flow_w_;
  Tensor inputs = Tensor::empty({b, 2, 27, h, w}), target = Tensor::empty({b, h, w, 2});
  for (int64_t i = 0; i < b; ++i) {
    const data::FlowExample& e = *pairs[static_cast<size_t>(i)];
    const int64_t H = e.frame1.height, W = e.frame1.width;
    int64_t top = (H - h) / 2, left = (W - w) / 2;
    bool flip = false;
    if (augment) {
      top = static_cast<int64_t>(rng->below(static_cast<uint32_t>(H - h + 1)));
      left = static_cast<int64_t>(rng->below(static_cast<uint32_t>(W - w + 1)));
      flip = config_.data.hflip && rng->below(2) == 1;
    }
    const data::RgbImage f1 = crop_image(e.frame1, top, left, h, w, flip), f2 = crop_image(e.frame2, top, left, h, w, flip);
    const Tensor features = data::flow_patch_features(f1, f2, 0, 0, h, w);
    std::copy(features.f32(), features.f32() + features.numel(), inputs.f32() + i * features.numel());
    float* t = target.f32() + i * h * w * 2;
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        const float* src = e.flow.f32() + ((top + y) * W + left + (flip ? w - 1 - x : x)) * 2;
        t[(y * w + x) * 2] = flip ? -src[0] : src[0];
        t[(y * w + x) * 2 + 1] = src[1];
      }
  }
  return {{"inputs", inputs}, {"target", target}};
}

TensorMap Task::train_batch(const std::vector<int64_t>& perm, int64_t first, int64_t b, Rng& rng,
                            double progress) const {
  const int64_t* idx = perm.data() + first;
  if (kind_ == Kind::kAutoencoder) {  // fresh clips from this step's generator
    std::vector<data::AvClip> drawn;
    for (int64_t i = 0; i < b; ++i) drawn.push_back(data::draw_av_clip(av_images_, av_speech_, av_, rng));
    std::vector<const data::AvClip*> clips;
    for (const auto& c : drawn) clips.push_back(&c);
    return av_batch(clips, &rng);
  }
  if (kind_ == Kind::kFlow) {
    std::vector<data::FlowExample> drawn;  // flow_synth: fresh pairs from this step's generator
    std::vector<const data::FlowExample*> pairs;
    if (flow_assets_) {
      // texture curriculum: texture for the first texture_hold share, then linearly -> texture_final
      data::FlowSynthOptions o = flow_synth_;
      const double hold = config_.data.texture_hold;
      const double t = hold >= 1 ? 0.0 : std::clamp((progress - hold) / (1 - hold), 0.0, 1.0);
      o.texture = static_cast<float>(config_.data.texture + t * (config_.data.texture_final - config_.data.texture));
      for (int64_t i = 0; i < b; ++i) {
        data::FlowPair p = data::synthesize_flow_pair(*flow_assets_, o, rng);
        drawn.push_back({std::move(p.frame1), std::move(p.frame2), p.flow});
      }
      for (const auto& e : drawn) pairs.push_back(&e);
    } else {
      for (int64_t i = 0; i < b; ++i) pairs.push_back(&flow_train_[static_cast<size_t>(idx[i])]);
    }
    return flow_batch(pairs, true, &rng);
  }
  if (kind_ == Kind::kClassifier) {
    const Shape example = train_set_.example_shape();
    Tensor x, y;
    train_set_.read(idx, b, x, y);
    const int64_t ex = x.numel() / b;
    const data::AugmentConfig aug{config_.data.max_shift, config_.data.hflip, config_.data.erase_prob};
    data::PointAugmentConfig point_aug;
    point_aug.rotate = config_.data.rotate;
    if (config_.data.scale.size() == 2) {
      point_aug.scale_min = config_.data.scale[0];
      point_aug.scale_max = config_.data.scale[1];
    }
    point_aug.jitter = config_.data.jitter;
    for (int64_t i = 0; i < b; ++i) {
      if (config_.data.format == "wav")  // waveform frames (T, F): a time shift by whole frames
        data::augment_time_shift(x.f32() + i * ex, example[0], ex / example[0], aug.max_shift, rng);
      else if (config_.data.format == "point_cloud")  // (points, 3): rotation, scale, jitter
        data::augment_points(x.f32() + i * ex, example[0], point_aug, rng);
      else if (aug.max_shift > 0 || aug.hflip || aug.erase_prob > 0)
        data::augment_image(x.f32() + i * ex, example[0], example[1], aug, rng);
    }
    return {{"inputs", x}, {"labels", y}};
  }
  Tensor ids, mask;
  if (config_.data.streaming) {
    ids = Tensor::empty({b, config_.data.seq_len}, DType::kI32);
    mask = Tensor::empty({b, config_.data.seq_len}, DType::kI32);
    train_stream_.read(idx, b, ids.data<int32_t>(), mask.data<int32_t>());
  } else {
    ids = gather_rows(train_ids_, idx, b);
    mask = gather_rows(train_mask_, idx, b);
  }
  if (kind_ != Kind::kMaskedLM)
    return {{"inputs", ids}, {"attention_mask", mask}, {"labels", gather_rows(train_labels_, idx, b)}};
  // masked LM: a fresh corruption of every sequence
  data::MaskingOptions mo{config_.data.mask_prob, config_.data.mean_span};
  Tensor inputs, labels;
  data::mask_tokens(ids, mask, mo, rng, inputs, labels);
  return {{"inputs", inputs}, {"attention_mask", mask}, {"labels", labels}};
}

TensorMap Task::test_batch(int64_t first, int64_t count) const {
  if (kind_ == Kind::kAutoencoder) {
    std::vector<const data::AvClip*> clips;
    for (int64_t i = 0; i < count; ++i) clips.push_back(&av_test_[static_cast<size_t>(first + i)]);
    return av_batch(clips, nullptr);
  }
  if (kind_ == Kind::kFlow) {
    std::vector<const data::FlowExample*> pairs;
    for (int64_t i = 0; i < count; ++i) pairs.push_back(&flow_test_[static_cast<size_t>(first + i)]);
    return flow_batch(pairs, false, nullptr);
  }
  if (kind_ == Kind::kClassifier) {
    std::vector<int64_t> rows(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) rows[static_cast<size_t>(i)] = first + i;
    Tensor x, y;
    test_set_.read(rows.data(), count, x, y);
    return {{"inputs", x}, {"labels", y}};
  }
  Tensor ids, mask;
  if (config_.data.streaming) {
    std::vector<int64_t> rows(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) rows[static_cast<size_t>(i)] = first + i;
    ids = Tensor::empty({count, config_.data.seq_len}, DType::kI32);
    mask = Tensor::empty({count, config_.data.seq_len}, DType::kI32);
    test_stream_.read(rows.data(), count, ids.data<int32_t>(), mask.data<int32_t>());
  } else {
    ids = test_ids_.slice0(first, count);
    mask = test_mask_.slice0(first, count);
  }
  if (kind_ != Kind::kMaskedLM)
    return {{"inputs", ids}, {"attention_mask", mask}, {"labels", test_labels_.slice0(first, count)}};
  // masked LM: each test sequence masked once, by a generator of its own (fixed held-out task)
  const int64_t len = ids.dim(1);
  data::MaskingOptions mo{config_.data.mask_prob, config_.data.mean_span};
  Tensor inputs = Tensor::empty(ids.shape(), DType::kI32), labels = Tensor::empty(ids.shape(), DType::kI32);
  for (int64_t i = 0; i < count; ++i) {
    Rng rng(config_.data.split_seed, 0x7e570000ULL + static_cast<uint64_t>(first + i));
    Tensor in_i, lab_i;
    data::mask_tokens(ids.slice0(i, 1), mask.slice0(i, 1), mo, rng, in_i, lab_i);
    std::copy(in_i.data<int32_t>(), in_i.data<int32_t>() + len, inputs.data<int32_t>() + i * len);
    std::copy(lab_i.data<int32_t>(), lab_i.data<int32_t>() + len, labels.data<int32_t>() + i * len);
  }
  return {{"inputs", inputs}, {"attention_mask", mask}, {"labels", labels}};
}

TensorMap Task::forward(const TensorMap& batch, Rng* rng) const {
  if (kind_ == Kind::kClassifier) return {{"logits", classifier_->forward(batch.at("inputs"), rng)}};
  if (kind_ == Kind::kFlow) return model_->forward({{"inputs", batch.at("inputs")}}, nullptr, rng);
  TensorMap in = {{"inputs", batch.at("inputs")}, {"attention_mask", batch.at("attention_mask")}};
  const int64_t len = batch.at("inputs").dim(1);
  if ((kind_ == Kind::kMaskedLM || kind_ == Kind::kTokenClassifier) && len < decoder_outputs_) {
    // decode only the sequence's positions (HF decodes all max_position_embeddings queries)
    Tensor points = Tensor::empty({len}, DType::kI32);
    for (int64_t i = 0; i < len; ++i) points.data<int32_t>()[i] = static_cast<int32_t>(i);
    in["subsampled_output_points"] = points;
  }
  return model_->forward(in, nullptr, rng);
}

Tensor Task::loss(const TensorMap& batch, float label_smoothing, Rng* rng, EvalResult* stats) const {
  if (kind_ == Kind::kAutoencoder) return av_loss(batch, rng, stats);
  TensorMap out = forward(batch, rng);
  const Tensor& logits = out.at("logits");
  if (kind_ == Kind::kFlow) {
    // end_point_error(20 logits (B, h, w, 2), target flow in pixels)
    const Tensor pred = ag::scale(logits, kFlowScale);
    if (stats) accumulate_flow_errors(pred, batch.at("target"), *stats);
    return ag::end_point_error(pred, batch.at("target"));
  }
  const Tensor& labels = batch.at("labels");
  if (regression_) {
    // mse(logits (B, 1), labels (B)): the model's regression loss
    if (stats) accumulate_squared_errors(logits, labels, *stats);
    return model_->loss(out, batch);
  }
  if (stats) accumulate_predictions(logits, labels, *stats);
  if (kind_ == Kind::kMaskedLM || kind_ == Kind::kTokenClassifier) {
    // cross_entropy over the masked (tagged) bytes: logits (B, L, K) -> (B*L, K), labels < 0 ignored
    const int64_t k = logits.dim(-1), rows = logits.numel() / k;
    return ag::cross_entropy(ag::reshape(logits, {rows, k}), labels.reshape({rows}),
                             kind_ == Kind::kMaskedLM ? 0.0f : label_smoothing);
  }
  return ag::cross_entropy(logits, labels, label_smoothing);
}

EvalResult Task::evaluate(int64_t batch_size) const { return evaluate(batch_size, 0, test_size_); }

EvalResult Task::evaluate(int64_t batch_size, int64_t first, int64_t count) const {
  autograd::NoGradGuard no_grad;
  check(batch_size > 0, "[evaluate] batch_size must be positive, got ", batch_size);
  check(first >= 0 && count >= 0 && first + count <= test_size_, "[evaluate] test examples [", first, ", ",
        first + count, ") are outside the test set of ", test_size_);
  EvalResult r;
  r.regression = regression_;
  if (kind_ == Kind::kAutoencoder)  // every rank has the same sums, also one with no test clips
    for (const char* k : {"video_se", "video_n", "audio_se", "audio_n", "video_zero_se", "video_zero_n", "audio_zero_se",
                          "audio_zero_n"})
      r.sums[k] = 0;
  if (kind_ == Kind::kFlow) r.sums["zero_flow_epe"] = 0;
  if (kind_ != Kind::kMaskedLM && kind_ != Kind::kFlow) {
    r.num_classes = num_classes_;
    r.confusion.assign(num_classes_ * num_classes_, 0);
  }
  for (int64_t start = first; start < first + count; start += batch_size) {
    const int64_t len = std::min(batch_size, first + count - start);
    const TensorMap batch = test_batch(start, len);
    if (kind_ == Kind::kAutoencoder) {
      av_evaluate(batch, r);
      continue;
    }
    const Tensor logits = forward(batch, nullptr).at("logits");
    if (kind_ == Kind::kFlow) {
      accumulate_flow_errors(ops::scale(logits, kFlowScale), batch.at("target"), r);
      data::FlowErrors zero;  // the baseline of predicting no motion
      data::add_flow_errors(Tensor::zeros(batch.at("target").shape()), batch.at("target"), zero);
      r.sums["zero_flow_epe"] += zero.epe_sum;
    }
    else if (regression_) accumulate_squared_errors(logits, batch.at("labels"), r);
    else accumulate_predictions(logits, batch.at("labels"), r);
  }
  return r;
}

int64_t Task::activation_bytes_per_example(bool checkpointing) const {
  if (classifier_) return classifier_->training_activation_bytes(checkpointing);
  const auto& p = perceiver_io_of(*model_);
  if (kind_ == Kind::kAutoencoder) {
    // the encoder over the video patches, audio patches and label; the decoder's training queries
    const int64_t m = av_.frames * (av_.size / 4) * (av_.size / 4) + av_.frames * av_.samples_per_frame / av_audio_patch_ + 1;
    const int64_t q = config_.data.image_queries + config_.data.audio_queries + 1;
    return static_cast<int64_t>(sizeof(float)) *
           (p.perceiver().activation_floats(m, checkpointing) + 8 * q * p.config().output_num_channels);
  }
  if (kind_ == Kind::kFlow) {
    // the encoder over h w inputs, the decoder's h w queries of d_model channels, the features
    const int64_t m = flow_h_ * flow_w_;
    return static_cast<int64_t>(sizeof(float)) *
           (p.perceiver().activation_floats(m, checkpointing) + m * (8 * p.config().d_model + 2 * 54 + 8));
  }
  const int64_t len = config_.data.seq_len, d = p.config().d_model;
  int64_t floats = p.perceiver().activation_floats(len, checkpointing);
  // the decoder over the sequence's queries (masked LM) and its logits
  if (kind_ == Kind::kMaskedLM) floats += len * (8 * d + 2 * p.config().vocab_size);
  if (kind_ == Kind::kTokenClassifier) floats += len * (8 * d + 2 * p.config().num_labels);
  return static_cast<int64_t>(sizeof(float)) * floats;
}

size_t Task::data_bytes() const {
  if (classifier_) return train_set_.resident_bytes() + test_set_.resident_bytes();  // 0 when streamed
  if (kind_ == Kind::kAutoencoder) {
    size_t n = av_images_.inputs.defined() ? av_images_.inputs.nbytes() : 0;
    for (const auto& d : av_speech_.recordings)
      for (const auto& r : d) n += r.size() * sizeof(float);
    for (const auto& c : av_test_) n += c.video.nbytes() + c.audio.nbytes();
    return n;
  }
  if (kind_ == Kind::kFlow) {
    size_t n = 0;
    for (const auto* set : {&flow_train_, &flow_test_})
      for (const auto& e : *set) n += e.frame1.pixels.size() + e.frame2.pixels.size() + e.flow.nbytes();
    return n;
  }
  if (config_.data.streaming) return 0;  // streamed text holds only its file lists
  return train_ids_.nbytes() * 2 + test_ids_.nbytes() * 2;
}

}  // namespace perceiver::train
