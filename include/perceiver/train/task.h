// What the trainer trains: a model with its data, as batches of named tensors. One class covers
// every data source of run configs:
//   classifier           images / audio frames (idx, image_folder, wav) -> an ImageClassifier
//                        (our Perceiver, ViT, an HF Perceiver IO image classifier);
//   masked_lm            byte-level text (data.format "text") -> PerceiverForMaskedLM, each
//                        training batch freshly masked, the test set masked once per example;
//   sequence_classifier  labelled text (data.format "labelled_text") ->
//                        PerceiverForSequenceClassification (num_labels 1: regression on numeric
//                        labels, mean squared error);
//   token_classifier     tagged text (data.format "tagged_text") -> PerceiverForTokenClassification,
//                        every byte of a token labelled with its tag (separators and [CLS]/[SEP]
//                        not predicted);
//   flow                 frame pairs with ground-truth flow (data.format "flow_synth": drawn on the
//                        fly, data/flow_synth.h; "flow_folder": FlyingChairs-layout files) ->
//                        PerceiverForOpticalFlow on pairs of its train_size, the end-point-error
//                        loss on the output times 20 (the hub model's pixel scale).
//   autoencoder          moving Fashion-MNIST clips with a spoken-digit soundtrack (data.format
//                        "moving_av", data/moving_av.h) -> PerceiverForMultimodalAutoencoding:
//                        training decodes a random subset of the video and audio output queries
//                        (data.image_queries, data.audio_queries) and the label, the loss
//                        video_weight MSE + audio_weight MSE + label_weight cross-entropy (label
//                        masked at the input); evaluation decodes every query in chunks.
// Statistics are over predictions: examples for classifiers, masked bytes for the masked LM,
// tagged bytes for the token classifier, pixels with known flow for optical flow (loss = mean
// end-point error in pixels, "correct" = under 3 px, correct_strict = under 1 px), clips for the
// autoencoder (correct = label right; sums "video_se"/"video_n", "audio_se"/"audio_n" give the
// reconstructions' mean squared errors). Optical-flow evaluation also sums "zero_flow_epe" (the
// end-point error of predicting no motion, over the same pixels: EvalResult::zero_flow_epe).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "perceiver/data/dataset.h"
#include "perceiver/data/flow_synth.h"
#include "perceiver/data/moving_av.h"
#include "perceiver/data/optical_flow.h"
#include "perceiver/data/text.h"
#include "perceiver/models/image_classifier.h"
#include "perceiver/models/model.h"
#include "perceiver/train/train_config.h"

namespace perceiver::train {

struct EvalResult {
  int64_t count = 0, correct = 0, num_classes = 0;  // predictions, correct argmax, classes (0: none)
  int64_t correct_strict = 0;      // optical flow: pixels under 1 px (correct: under 3 px)
  std::map<std::string, double> sums;  // further sums by name (added by merge)
  double loss = 0;                 // mean cross-entropy per prediction in nats (no smoothing);
                                   // regression: the mean squared error
  bool regression = false;         // a regression (num_labels 1): accuracy does not apply
  std::vector<int64_t> confusion;  // classifiers: (K, K), row = true class, column = prediction
  double accuracy() const { return count ? static_cast<double>(correct) / count : 0.0; }
  double bits_per_prediction() const;  // loss / ln 2 (bits per byte for the masked LM)
  // The mean of sums[name + "_se"] over sums[name + "_n"] (0 when absent).
  double mean_squared_error(const std::string& name) const;
  double zero_flow_epe() const;  // optical flow: sums["zero_flow_epe"] / count (0 when absent)
  void merge(const EvalResult& other);  // adds other's predictions (counts, loss, confusion)
};

// Adds the argmax accuracy, cross-entropy and (when r.confusion is sized) confusion of logits
// (..., K) against labels (...) int32; labels < 0 are not predictions.
void accumulate_predictions(const Tensor& logits, const Tensor& labels, EvalResult& r);

// Adds the squared errors of predictions (B, 1) against float32 targets (B) (regression).
void accumulate_squared_errors(const Tensor& predictions, const Tensor& targets, EvalResult& r);

class Task {
 public:
  enum class Kind { kClassifier, kMaskedLM, kSequenceClassifier, kTokenClassifier, kFlow, kAutoencoder };

  // kTrain loads the training and test data and builds the model initialised from train.seed;
  // kEvaluate loads what evaluation needs (the test set, and the labels that name the classes)
  // and leaves the weights uninitialised for a checkpoint to fill.
  enum class Mode { kTrain, kEvaluate };
  explicit Task(const RunConfig& config, Mode mode = Mode::kTrain);

  Kind kind() const { return kind_; }
  models::Model& model() { return *model_; }
  int64_t train_size() const { return train_size_; }
  int64_t test_size() const { return test_size_; }
  // The masked LM's split of whole documents (and the limits), for OUT/data_split.json
  // (tools/text_baselines.py reads it); null for the other data formats.
  const nlohmann::json& split() const { return split_; }
  // Class names by id (classifiers; empty for the masked LM).
  const std::vector<std::string>& class_names() const { return class_names_; }
  // The run config's model object as the model was built: a text classifier's hub config gains
  // the id2label of the data's classes. Checkpoints and config.json store this one, so that
  // evaluation maps labels as training did.
  const nlohmann::json& model_config() const { return model_config_; }
  const char* example_word() const {
    return kind_ == Kind::kMaskedLM          ? "sequences"
           : kind_ == Kind::kTokenClassifier ? "sentences"
           : kind_ == Kind::kFlow            ? "pairs"
           : kind_ == Kind::kAutoencoder     ? "clips"
                                             : "examples";
  }
  // What one prediction of the statistics is, and the name of their accuracy.
  const char* prediction_word() const {
    return kind_ == Kind::kMaskedLM          ? "masked bytes"
           : kind_ == Kind::kTokenClassifier ? "tagged bytes"
           : kind_ == Kind::kFlow            ? "pixels"
           : kind_ == Kind::kAutoencoder     ? "clips"
                                             : "examples";
  }
  const char* accuracy_name() const {
    return kind_ == Kind::kMaskedLM          ? "masked-byte accuracy"
           : kind_ == Kind::kTokenClassifier ? "byte accuracy"
           : kind_ == Kind::kFlow            ? "share of pixels under 3 px"
           : kind_ == Kind::kAutoencoder     ? "label accuracy"
                                             : "accuracy";
  }
  // The training examples perm[first .. first + b) as a batch; augmentation and masking from rng;
  // progress: the share of training done (step / total steps), for data curricula.
  models::TensorMap train_batch(const std::vector<int64_t>& perm, int64_t first, int64_t b, Rng& rng,
                                double progress = 0.0) const;
  // Test examples [first, first + count): the same batch whatever the batch size.
  models::TensorMap test_batch(int64_t first, int64_t count) const;
  // Forward in the model's current mode and the training loss (classifiers: label smoothing);
  // stats (optional) receive the batch's predictions.
  Tensor loss(const models::TensorMap& batch, float label_smoothing, Rng* rng, EvalResult* stats) const;
  // The whole test set in batches, without gradients.
  EvalResult evaluate(int64_t batch_size) const;
  // The test examples [first, first + count) only (a rank's share in data-parallel runs).
  EvalResult evaluate(int64_t batch_size, int64_t first, int64_t count) const;
  // Pictures and sounds of the model's outputs on the first `count` test examples, written
  // (atomically) into dir: optical flow, sample_NN.png = frame 1 | frame 2 | ground truth |
  // prediction (one colour scale); the autoencoder, sample_NN.png = the input frames over their
  // reconstruction, sample_NN_input.wav and sample_NN_output.wav. Returns the files written (none
  // for the other kinds); creates dir when it writes.
  std::vector<std::string> write_samples(const std::string& dir, int64_t count) const;
  // Memory estimate inputs: activations kept per training example, and the data held.
  int64_t activation_bytes_per_example(bool checkpointing) const;
  size_t data_bytes() const;

 private:
  models::TensorMap forward(const models::TensorMap& batch, Rng* rng) const;

  // The hub flow model's output times this is flow in pixels (upstream FLOW_SCALE_FACTOR).
  static constexpr float kFlowScale = 20.0f;

  RunConfig config_;
  nlohmann::json model_config_;
  Kind kind_ = Kind::kClassifier;
  std::unique_ptr<models::Model> model_;
  models::ImageClassifier* classifier_ = nullptr;  // kind classifier
  int64_t train_size_ = 0, test_size_ = 0, num_classes_ = 0, decoder_outputs_ = 0;
  bool regression_ = false;
  std::vector<std::string> class_names_;
  nlohmann::json split_;
  data::ExampleSource train_set_, test_set_;       // classifier: in memory or streamed
  Tensor train_ids_, train_mask_, test_ids_, test_mask_, train_labels_, test_labels_;  // text
  data::StreamedSequences train_stream_, test_stream_;  // masked LM with data.streaming
  // optical flow: the synthesiser's assets and options (flow_synth), the pairs held in memory
  // (flow_folder: both sets; flow_synth: the test set)
  std::shared_ptr<const data::FlowAssets> flow_assets_;
  data::FlowSynthOptions flow_synth_;
  std::vector<data::FlowExample> flow_train_, flow_test_;
  int64_t flow_h_ = 0, flow_w_ = 0;  // the model's train_size

  void init_flow(bool train);
  models::TensorMap flow_batch(const std::vector<const data::FlowExample*>& pairs, bool augment, Rng* rng) const;

  // multimodal autoencoding (task_av.cpp): Fashion-MNIST items and FSDD speech of each split,
  // the clip options from the model's config, the held-out clips (drawn once from split_seed)
  data::Dataset av_images_;
  data::SpokenDigits av_speech_;
  data::MovingAvOptions av_;
  std::vector<data::AvClip> av_test_;
  int64_t av_audio_patch_ = 16, av_labels_ = 10;
  void init_av(bool train);
  models::TensorMap av_batch(const std::vector<const data::AvClip*>& clips, Rng* rng) const;
  Tensor av_loss(const models::TensorMap& batch, Rng* rng, EvalResult* stats) const;
  void av_evaluate(const models::TensorMap& batch, EvalResult& r) const;
  // Every output query of the batch's clips, decoded in chunks (logits.image, logits.audio, logits.label).
  models::TensorMap av_decode_all(const models::TensorMap& batch) const;
};

}  // namespace perceiver::train
