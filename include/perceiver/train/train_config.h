// Training-run configuration: the "train" and "data" objects of a run's JSON config (the
// "model" object is validated by the model factory, models/image_classifier.h). Strictly
// validated: unknown keys, wrong types and out-of-range values are errors naming the key.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace perceiver::train {

struct TrainConfig {
  int epochs = 3;
  int64_t batch_size = 64;
  int64_t eval_batch_size = 100;  // small: evaluation activations dominate peak memory otherwise
  int eval_every = 1;  // epochs between evaluations of the test set; the last epoch always is
  std::string optimizer = "adamw";  // "adamw" | "lamb"
  float lr = 1e-3f;
  float weight_decay = 0.05f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  std::string schedule = "warmup_cosine";  // "constant" | "warmup_cosine" | "constant_cosine"
  int64_t warmup_steps = 200;
  float final_lr_fraction = 0.0f;
  float constant_fraction = 0.7f;  // constant_cosine: share of training at constant lr
  float grad_clip = 1.0f;          // global-norm clipping; 0 disables
  float label_smoothing = 0.1f;
  // > 0: evaluate and export an exponential moving average of the weights (optim::Optimizer
  // update_ema, e.g. 0.999); training continues on the live weights, which checkpoints keep
  // beside the average for resuming. 0 = off.
  float ema_decay = 0.0f;
  uint64_t seed = 0;
  int threads = 0;                 // 0 = all cores
  // How the threads share a step (train/data_parallel.h): "batch" (each thread a slice of the
  // batch), "intra_op" (all threads inside each op), or "auto". Like threads, it may change on
  // resume; a resumed run is bit-identical to an uninterrupted one when both stay the same.
  std::string parallelism = "auto";
  int64_t log_every = 50;          // steps between plain-text progress lines / metric records
  int64_t checkpoint_every = 0;    // steps between checkpoints (0: end of each epoch only)
  int64_t max_steps = 0;           // stop (as if interrupted) after this many total steps; 0 = off
  bool activation_checkpointing = false;  // recompute attention layers in backward (less memory)
  // "f32", or "bf16": mixed precision (fp32 master weights, gradients and optimizer state; every
  // linear layer and both attention products in bf16 with fp32 accumulation, forward and
  // backward; layer norm, softmax statistics and the loss in fp32; evaluation in bf16)
  std::string precision = "f32";
};

struct DataConfig {
  // "idx": Fashion-MNIST-style IDX files; "wav": a folder of WAV files; "image_folder": PNG/JPEG
  // files in class folders (resized to the model's image_size); "point_cloud": meshes and point
  // sets in class folders; "text", "labelled_text", "tagged_text"; "flow_synth", "flow_folder"; "moving_av"
  std::string format = "idx";
  std::string dir = "/usr/share/datasets/fashion-mnist";
  int64_t train_limit = 0;  // use only the first n training examples (0 = all)
  int64_t test_limit = 0;
  int max_shift = 0;        // augmentation: random shift by up to this many pixels (images) or frames (audio)
  bool hflip = false;       // augmentation: random horizontal flip (images)
  float erase_prob = 0.0f;  // augmentation: random erasing of one rectangle with this probability (grey images)
  // format "wav" (data/wav_folder.h): labels from subfolders or the file-name pattern
  std::string pattern;                   // e.g. "{label}_{group}_{index}.wav" (FSDD); "" = subfolders
  int64_t sample_rate = 8000;            // every file must have it
  int64_t length = 6144;                 // samples per example (centre crop / zero pad)
  int64_t frame = 16;                    // samples per input element
  int64_t hop = 0;                       // samples between frames (0: = frame): inputs ((length - frame) / hop + 1, frame)
  bool peak_normalize = true;
  std::string test_group;                // hold out this group (leave-one-speaker-out)
  std::vector<int64_t> test_index_range; // or {lo, hi}: these indices are the test set (FSDD: 0-4)
  float test_fraction = 0.1f;            // or this share of the files, by a seeded hash of the name
  uint64_t split_seed = 0;               // (test_fraction and split_seed: also image_folder)
  std::vector<float> speed_perturbation; // training copies resampled by these factors, e.g. [0.9, 1.1]
  // format "image_folder" (data/image_folder.h)
  int64_t channels = 1;                  // 1: grey, 3: RGB
  // format "point_cloud" (data/point_cloud_folder.h): .off/.ply/.xyz/.wrl files in class folders,
  // model.image_size [points] points each (model.in_channels 3); training examples augmented
  std::string rotate = "none";           // "none", "z" (about the vertical axis), "xyz" (any rotation)
  std::vector<float> scale;              // [min, max]: an isotropic factor drawn per example ([] = none)
  float jitter = 0.0f;                   // Gaussian noise of this standard deviation per coordinate
  // formats "text" (masked LM over a file or directory of text files), "labelled_text" (a
  // .jsonl or .tsv file of text and label) and "tagged_text" (a .jsonl or .conll file of tokens
  // and their tags; data/text.h); test_fraction and split_seed as above
  int64_t seq_len = 256;                 // token ids per sequence ([CLS] bytes [SEP], padded)
  std::vector<std::string> extensions;   // text: only files ending so (e.g. ".txt", ".rst.gz")
  int64_t max_bytes = int64_t(1) << 31;  // text: refuse larger corpora
  double mask_prob = 0.15;               // text: share of bytes to predict
  double mean_span = 1.0;                // text: 1 = single bytes, > 1 = spans of that mean length
  bool streaming = false;                // text, wav, image_folder, point_cloud: read the files per batch (sets larger than memory)
  std::string test_file;                 // labelled/tagged_text: the test set (else a test_fraction split)
  // formats "flow_synth" (pairs drawn on the fly from the assets in dir: data/flow_synth.h) and
  // "flow_folder" (FlyingChairs-layout pairs in dir, random crops of the model's train_size;
  // test_fraction and split_seed as above); hflip flips both frames and negates u
  int64_t train_pairs = 8192;            // flow_synth: pairs per epoch (fresh every step)
  int64_t test_pairs = 256;              // flow_synth: held-out pairs, drawn once from split_seed
  int64_t min_sprites = 3, max_sprites = 8;  // flow_synth: sprites per pair
  float sprite_translation = 8.0f;       // flow_synth: sprite motion, pixels per axis at most
  float background_translation = 4.0f;   // flow_synth: background motion, pixels per axis at most
  // flow_synth: rotation (radians about the layer's centre) and relative scale change at most
  float sprite_rotation = 0.3f, sprite_scale = 0.1f, background_rotation = 0.05f, background_scale = 0.05f;
  // flow_synth: procedural texture on every layer (data/flow_synth.h), blended in at `texture` for
  // the first texture_hold share of the steps, then linearly towards `texture_final` (reached at
  // the end of the run: step / total steps = 1); a curriculum: strong texture makes motion easy to
  // see. The test pairs use texture_final; a run config without it gets `texture` (parse_run_config).
  float texture = 0.0f, texture_final = 0.0f, texture_hold = 0.0f, texture_cell = 1.5f;
  int64_t max_assets = 0;                // flow_synth: read at most this many sprites (0 = all)
  // format "moving_av" (multimodal autoencoding, data/moving_av.h): Fashion-MNIST IDX files in dir,
  // FSDD recordings in audio_dir (takes 0-4 for the test clips); the clip shape comes from the
  // model (num_frames, output_shape, audio_samples_per_frame)
  std::string audio_dir = "../shared/datasets/fsdd/recordings";
  int64_t train_clips = 8192;            // clips per epoch (drawn afresh every step)
  int64_t test_clips = 256;              // held-out clips, drawn once from split_seed
  int64_t image_queries = 1024;          // training: video output queries decoded per step
  int64_t audio_queries = 64;            // training: audio output queries (patches) per step
  float video_weight = 1.0f, audio_weight = 1.0f, label_weight = 0.05f;  // the loss's terms
};

struct RunConfig {
  nlohmann::json model;  // normalised "model" object (every key, with "type")
  TrainConfig train;
  DataConfig data;
  nlohmann::json to_json() const;
};

// Parses {"model": {...}, "train": {...}, "data": {...}}; unknown keys anywhere are errors.
RunConfig parse_run_config(const nlohmann::json& j);
RunConfig load_run_config(const std::string& path);
// The same with overrides applied to the JSON before validation, each "a.b.c=VALUE": VALUE is
// JSON (a number, true, [1, 2], {"k": 1}, "text") or else taken as a string (always a string where
// the config holds a string); missing objects on the way are created. A malformed override is an error naming it.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides);
// Applies one such override to j.
void apply_config_override(nlohmann::json& j, const std::string& override_text);

}  // namespace perceiver::train
