// Run configuration parsing and validation.
#include "perceiver/train/train_config.h"

#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/models/image_classifier.h"

namespace perceiver::train {

RunConfig parse_run_config(const nlohmann::json& j) {
  JsonObject root(j, "config");
  RunConfig rc;
  JsonObject model = root.get_object("model");
  JsonObject tr = root.get_object("train");
  JsonObject data = root.get_object("data");
  root.finish();
  check(root.has("model"), "[config] config: missing required object 'model'");
  rc.model = models::normalize_image_classifier_config(j.at("model"), "model");
  (void)model;

  TrainConfig& t = rc.train;
  t.epochs = static_cast<int>(tr.get_int("epochs", t.epochs, 1, 100000));
  t.batch_size = tr.get_int("batch_size", t.batch_size, 1, 1 << 20);
  t.eval_batch_size = tr.get_int("eval_batch_size", t.eval_batch_size, 1, 1 << 20);
  t.eval_every = static_cast<int>(tr.get_int("eval_every", t.eval_every, 1, 100000));
  t.optimizer = tr.get_string("optimizer", t.optimizer, {"adamw", "lamb"});
  t.lr = tr.get_float("lr", t.lr, 1e-12, 10.0);
  t.weight_decay = tr.get_float("weight_decay", t.weight_decay, 0.0, 10.0);
  t.beta1 = tr.get_float("beta1", t.beta1, 0.0, 0.999999);
  t.beta2 = tr.get_float("beta2", t.beta2, 0.0, 0.999999);
  t.eps = tr.get_float("eps", t.eps, 1e-12, 1.0);
  t.schedule = tr.get_string("schedule", t.schedule, {"constant", "warmup_cosine", "constant_cosine"});
  t.warmup_steps = tr.get_int("warmup_steps", t.warmup_steps, 0, int64_t(1) << 40);
  t.final_lr_fraction = tr.get_float("final_lr_fraction", t.final_lr_fraction, 0.0, 1.0);
  t.constant_fraction = tr.get_float("constant_fraction", t.constant_fraction, 0.0, 1.0);
  t.grad_clip = tr.get_float("grad_clip", t.grad_clip, 0.0, 1e6);
  t.label_smoothing = tr.get_float("label_smoothing", t.label_smoothing, 0.0, 0.99);
  t.ema_decay = tr.get_float("ema_decay", t.ema_decay, 0.0, 0.999999);
  t.seed = static_cast<uint64_t>(tr.get_int("seed", 0, 0, INT64_MAX));
  t.threads = static_cast<int>(tr.get_int("threads", t.threads, 0, 1024));
  t.parallelism = tr.get_string("parallelism", t.parallelism, {"auto", "batch", "intra_op"});
  t.log_every = tr.get_int("log_every", t.log_every, 1, int64_t(1) << 40);
  t.checkpoint_every = tr.get_int("checkpoint_every", t.checkpoint_every, 0, int64_t(1) << 40);
  t.max_steps = tr.get_int("max_steps", t.max_steps, 0, int64_t(1) << 40);
  t.activation_checkpointing = tr.get_bool("activation_checkpointing", t.activation_checkpointing);
  t.precision = tr.get_string("precision", t.precision, {"f32", "bf16"});
  tr.finish();

  DataConfig& d = rc.data;
  d.format = data.get_string("format", d.format,
                             {"idx", "wav", "image_folder", "point_cloud", "text", "labelled_text", "tagged_text",
                              "flow_synth", "flow_folder", "moving_av"});
  d.dir = data.get_string("dir", d.dir);
  d.train_limit = data.get_int("train_limit", d.train_limit, 0, int64_t(1) << 40);
  d.test_limit = data.get_int("test_limit", d.test_limit, 0, int64_t(1) << 40);
  d.max_shift = static_cast<int>(data.get_int("max_shift", d.max_shift, 0, 64));
  d.hflip = data.get_bool("hflip", d.hflip);
  d.erase_prob = data.get_float("erase_prob", d.erase_prob, 0.0, 1.0);
  check(d.erase_prob == 0.0f || d.format == "idx" || d.format == "image_folder", "[config] data.erase_prob (random "
        "erasing) augments images (formats idx and image_folder), not format \"", d.format, "\"");
  if (d.format == "wav") {
    d.pattern = data.get_string("pattern", d.pattern);
    d.sample_rate = data.get_int("sample_rate", d.sample_rate, 1, 768000);
    d.length = data.get_int("length", d.length, 1, int64_t(1) << 24);
    d.frame = data.get_int("frame", d.frame, 1, 4096);
    d.hop = data.get_int("hop", d.hop, 0, 4096);
    d.peak_normalize = data.get_bool("peak_normalize", d.peak_normalize);
    d.test_group = data.get_string("test_group", d.test_group);
    d.test_index_range = data.get_int_list("test_index_range", d.test_index_range, 0, int64_t(1) << 30, 2, 2);
    d.test_fraction = data.get_float("test_fraction", d.test_fraction, 0.0, 1.0);
    d.split_seed = static_cast<uint64_t>(data.get_int("split_seed", 0, 0, INT64_MAX));
    d.speed_perturbation = data.get_float_list("speed_perturbation", d.speed_perturbation, 0.5, 2.0, 0, 8);
    const int64_t hop = d.hop > 0 ? d.hop : d.frame;
    check(d.frame <= d.length && (d.length - d.frame) % hop == 0, "[config] data.length (", d.length,
          ") must be data.frame (", d.frame, ") plus a multiple of the hop (", hop, ")");
    if (!d.test_index_range.empty() && d.test_index_range[0] > d.test_index_range[1])
      throw_error("[config] data.test_index_range: expected [lo, hi] with lo <= hi, got [", d.test_index_range[0], ", ",
                  d.test_index_range[1], "]");
    check(!d.hflip, "[config] data.hflip applies to images, not to format \"wav\"");
  } else if (d.format == "image_folder") {
    d.channels = data.get_int("channels", d.channels, 1, 3);
    check(d.channels != 2, "[config] data.channels: expected 1 (grey) or 3 (RGB), got 2");
    d.test_fraction = data.get_float("test_fraction", d.test_fraction, 0.0, 1.0);
    d.split_seed = static_cast<uint64_t>(data.get_int("split_seed", 0, 0, INT64_MAX));
  } else if (d.format == "point_cloud") {
    d.test_fraction = data.get_float("test_fraction", d.test_fraction, 0.0, 1.0);
    d.split_seed = static_cast<uint64_t>(data.get_int("split_seed", 0, 0, INT64_MAX));
    d.rotate = data.get_string("rotate", d.rotate, {"none", "z", "xyz"});
    d.scale = data.get_float_list("scale", d.scale, 0.01, 100.0, 0, 2);
    check(d.scale.empty() || (d.scale.size() == 2 && d.scale[0] <= d.scale[1]), "[config] data.scale: expected [] or "
          "[min, max] with min <= max, got ", nlohmann::json(d.scale).dump());
    d.jitter = data.get_float("jitter", d.jitter, 0.0, 1.0);
    check(d.max_shift == 0 && !d.hflip, "[config] data.max_shift and data.hflip augment images and audio; point "
          "clouds take rotate, scale and jitter");
  } else if (d.format == "text" || d.format == "labelled_text" || d.format == "tagged_text") {
    d.seq_len = data.get_int("seq_len", d.seq_len, 3, 1 << 16);
    const bool has_test_file = d.format != "text" && !data.get_string("test_file", "").empty();
    check(!has_test_file || (!data.has("test_fraction") && !data.has("split_seed")), "[config] data.test_file "
          "is the test set: data.test_fraction and data.split_seed (a split of data.dir) do not apply with it");
    d.test_fraction = data.get_float("test_fraction", d.test_fraction, 0.0, 1.0);
    check(d.test_fraction > 0 && d.test_fraction < 1, "[config] data.test_fraction: expected a share in (0, 1), got ",
          d.test_fraction);
    d.split_seed = static_cast<uint64_t>(data.get_int("split_seed", 0, 0, INT64_MAX));
    d.max_bytes = data.get_int("max_bytes", d.max_bytes, 1, int64_t(1) << 40);
    check(d.max_shift == 0 && !d.hflip, "[config] data.max_shift and data.hflip augment images and audio, not text");
    if (d.format == "text") {
      d.extensions = data.get_string_list("extensions", d.extensions, 0, 64);
      d.mask_prob = data.get_number("mask_prob", d.mask_prob, 0.001, 0.999);
      d.mean_span = data.get_number("mean_span", d.mean_span, 1.0, 64.0);
    } else {
      d.test_file = data.get_string("test_file", d.test_file);
    }
  } else if (d.format == "flow_synth") {
    check(d.max_shift == 0, "[config] data.max_shift does not apply to optical flow (the flow would change); "
          "data.hflip does");
    d.train_pairs = data.get_int("train_pairs", d.train_pairs, 1, int64_t(1) << 26);
    d.test_pairs = data.get_int("test_pairs", d.test_pairs, 1, int64_t(1) << 24);
    d.split_seed = static_cast<uint64_t>(data.get_int("split_seed", 0, 0, INT64_MAX));
    d.min_sprites = data.get_int("min_sprites", d.min_sprites, 0, 64);
    d.max_sprites = data.get_int("max_sprites", d.max_sprites, 0, 64);
    check(d.min_sprites <= d.max_sprites, "[config] data.min_sprites (", d.min_sprites, ") must be <= data.max_sprites (",
          d.max_sprites, ")");
    d.sprite_translation = data.get_float("sprite_translation", d.sprite_translation, 0.0, 1000.0);
    d.background_translation = data.get_float("background_translation", d.background_translation, 0.0, 1000.0);
    d.sprite_rotation = data.get_float("sprite_rotation", d.sprite_rotation, 0.0, 3.15);
    d.sprite_scale = data.get_float("sprite_scale", d.sprite_scale, 0.0, 0.49);
    d.background_rotation = data.get_float("background_rotation", d.background_rotation, 0.0, 3.15);
    d.background_scale = data.get_float("background_scale", d.background_scale, 0.0, 0.49);
    d.texture = data.get_float("texture", d.texture, 0.0, 1.0);
    d.texture_final = data.get_float("texture_final", d.texture, 0.0, 1.0);
    d.texture_hold = data.get_float("texture_hold", d.texture_hold, 0.0, 1.0);
    d.texture_cell = data.get_float("texture_cell", d.texture_cell, 0.25, 64.0);
    d.max_assets = data.get_int("max_assets", d.max_assets, 0, int64_t(1) << 30);
  } else if (d.format == "moving_av") {
    check(d.max_shift == 0 && !d.hflip, "[config] data.max_shift and data.hflip do not apply to format \"moving_av\"");
    d.audio_dir = data.get_string("audio_dir", d.audio_dir);
    d.train_clips = data.get_int("train_clips", d.train_clips, 1, int64_t(1) << 26);
    d.test_clips = data.get_int("test_clips", d.test_clips, 1, int64_t(1) << 24);
    d.split_seed = static_cast<uint64_t>(data.get_int("split_seed", 0, 0, INT64_MAX));
    d.image_queries = data.get_int("image_queries", d.image_queries, 1, int64_t(1) << 30);
    d.audio_queries = data.get_int("audio_queries", d.audio_queries, 1, int64_t(1) << 30);
    d.video_weight = data.get_float("video_weight", d.video_weight, 0.0, 1e6);
    d.audio_weight = data.get_float("audio_weight", d.audio_weight, 0.0, 1e6);
    d.label_weight = data.get_float("label_weight", d.label_weight, 0.0, 1e6);
  } else if (d.format == "flow_folder") {
    check(d.max_shift == 0, "[config] data.max_shift does not apply to optical flow (the flow would change); "
          "data.hflip does");
    d.test_fraction = data.get_float("test_fraction", d.test_fraction, 0.0, 1.0);
    check(d.test_fraction > 0 && d.test_fraction < 1, "[config] data.test_fraction: expected a share in (0, 1), got ",
          d.test_fraction);
    d.split_seed = static_cast<uint64_t>(data.get_int("split_seed", 0, 0, INT64_MAX));
  }
  if (d.format == "text" || d.format == "wav" || d.format == "image_folder" || d.format == "point_cloud")
    d.streaming = data.get_bool("streaming", d.streaming);
  data.finish();
  return rc;
}

void apply_config_override(nlohmann::json& j, const std::string& text) {
  const size_t eq = text.find('=');
  check(eq != std::string::npos && eq > 0, "[config] --set ", text, ": expected KEY=VALUE, e.g. data.test_group=george "
        "or train.epochs=12");
  const std::string key = text.substr(0, eq), value = text.substr(eq + 1);
  nlohmann::json* node = &j;
  size_t start = 0;
  for (;;) {
    const size_t dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    check(!part.empty(), "[config] --set ", text, ": empty key part in \"", key, "\"");
    check(node->is_object(), "[config] --set ", text, ": \"", key.substr(0, start ? start - 1 : 0),
          "\" is not an object, so it has no key \"", part, "\"");
    node = &(*node)[part];
    if (dot == std::string::npos) break;
    start = dot + 1;
    if (node->is_null()) *node = nlohmann::json::object();
  }
  // JSON, else a string; where the config holds a string, the text stays a string (a speaker
  // named 3, a path like 2024)
  nlohmann::json parsed = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
  *node = parsed.is_discarded() || (node->is_string() && !parsed.is_string()) ? nlohmann::json(value) : parsed;
}

RunConfig load_run_config(const std::string& path) { return load_run_config(path, {}); }

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  nlohmann::json j = read_json_file(path, "config");
  check(j.is_object(), "[config] ", path, ": expected a JSON object with \"model\", \"train\" and \"data\"");
  for (const std::string& o : overrides) apply_config_override(j, o);
  try {
    return parse_run_config(j);
  } catch (const Error& e) {  // "[config] model.x: ..." -> "[config] <path>: model.x: ..."
    const std::string m = e.what(), prefix = "[config] ";
    throw Error(m.rfind(prefix, 0) == 0 ? prefix + path + ": " + m.substr(prefix.size()) : m + " (in " + path + ")");
  }
}

namespace {
nlohmann::json data_json(const DataConfig& d) {
  nlohmann::json j = {{"format", d.format}, {"dir", d.dir}, {"train_limit", d.train_limit},
                      {"test_limit", d.test_limit}, {"max_shift", d.max_shift}, {"hflip", d.hflip}};
  if (d.erase_prob > 0) j["erase_prob"] = d.erase_prob;  // absent when off: older runs' configs stay equal
  if (d.format == "wav") {
    j.update({{"pattern", d.pattern}, {"sample_rate", d.sample_rate}, {"length", d.length}, {"frame", d.frame}, {"hop", d.hop},
              {"peak_normalize", d.peak_normalize}, {"test_group", d.test_group}, {"test_fraction", d.test_fraction},
              {"split_seed", d.split_seed}, {"speed_perturbation", d.speed_perturbation},
              {"streaming", d.streaming}});
    if (!d.test_index_range.empty()) j["test_index_range"] = d.test_index_range;  // absent: no range
  } else if (d.format == "image_folder") {
    j.update({{"channels", d.channels}, {"test_fraction", d.test_fraction}, {"split_seed", d.split_seed},
              {"streaming", d.streaming}});
  } else if (d.format == "point_cloud") {
    j.update({{"test_fraction", d.test_fraction}, {"split_seed", d.split_seed}, {"rotate", d.rotate},
              {"scale", d.scale}, {"jitter", d.jitter}, {"streaming", d.streaming}});
  } else if (d.format == "text") {
    j.update({{"seq_len", d.seq_len}, {"test_fraction", d.test_fraction}, {"split_seed", d.split_seed},
              {"extensions", d.extensions}, {"max_bytes", d.max_bytes}, {"mask_prob", d.mask_prob},
              {"mean_span", d.mean_span}, {"streaming", d.streaming}});
  } else if (d.format == "labelled_text" || d.format == "tagged_text") {
    j.update({{"seq_len", d.seq_len}, {"max_bytes", d.max_bytes}});
    if (d.test_file.empty()) j.update({{"test_fraction", d.test_fraction}, {"split_seed", d.split_seed}});
    else j["test_file"] = d.test_file;
  } else if (d.format == "flow_synth") {
    j.update({{"train_pairs", d.train_pairs}, {"test_pairs", d.test_pairs}, {"split_seed", d.split_seed},
              {"min_sprites", d.min_sprites}, {"max_sprites", d.max_sprites}, {"sprite_translation", d.sprite_translation},
              {"background_translation", d.background_translation}, {"sprite_rotation", d.sprite_rotation},
              {"sprite_scale", d.sprite_scale}, {"background_rotation", d.background_rotation},
              {"background_scale", d.background_scale}, {"texture", d.texture}, {"texture_final", d.texture_final},
              {"texture_hold", d.texture_hold}, {"texture_cell", d.texture_cell},
              {"max_assets", d.max_assets}});
  } else if (d.format == "flow_folder") {
    j.update({{"test_fraction", d.test_fraction}, {"split_seed", d.split_seed}});
  } else if (d.format == "moving_av") {
    j.update({{"audio_dir", d.audio_dir}, {"train_clips", d.train_clips}, {"test_clips", d.test_clips},
              {"split_seed", d.split_seed}, {"image_queries", d.image_queries}, {"audio_queries", d.audio_queries},
              {"video_weight", d.video_weight}, {"audio_weight", d.audio_weight}, {"label_weight", d.label_weight}});
  }
  return j;
}
}  // namespace

nlohmann::json RunConfig::to_json() const {
  const TrainConfig& t = train;
  return {{"model", model},
          {"train",
           {{"epochs", t.epochs}, {"batch_size", t.batch_size}, {"eval_batch_size", t.eval_batch_size},
            {"eval_every", t.eval_every},
            {"optimizer", t.optimizer}, {"lr", t.lr}, {"weight_decay", t.weight_decay},
            {"beta1", t.beta1}, {"beta2", t.beta2}, {"eps", t.eps}, {"schedule", t.schedule},
            {"warmup_steps", t.warmup_steps}, {"final_lr_fraction", t.final_lr_fraction},
            {"constant_fraction", t.constant_fraction}, {"grad_clip", t.grad_clip},
            {"label_smoothing", t.label_smoothing}, {"ema_decay", t.ema_decay}, {"seed", t.seed},
            {"threads", t.threads}, {"parallelism", t.parallelism},
            {"log_every", t.log_every}, {"checkpoint_every", t.checkpoint_every},
            {"max_steps", t.max_steps}, {"activation_checkpointing", t.activation_checkpointing},
            {"precision", t.precision}}},
          {"data",
           data_json(data)}};
}

}  // namespace perceiver::train
