// The one JSON reader: bounded parsing and typed, range-checked access to configuration objects.
//
// parse_json / read_json_file parse without recursion (a SAX builder): a document larger than
// JsonLimits::max_bytes, nesting deeper than JsonLimits::max_depth, invalid syntax and numbers
// outside double's range are errors that name the file and, where there is one, the key path
// ("[config] run.json: model.num_latents: number 1e400 is outside the range of a double").
//
// JsonObject reads one object without copying it (it points into the caller's document, which
// must outlive it). Two modes:
//   strict (run configs, our checkpoints): finish() rejects keys that were never asked for, so
//     typos fail loudly; messages read "[config] model.num_latents: expected ..., got ...";
//   lenient (Hugging Face config.json, preprocessor_config.json): unknown keys are ignored, as
//     transformers does; messages read "[hf_config] dir/config.json: num_latents: expected ...".
// In both, null counts as absent. Values are converted without undefined behaviour (an integer
// field given 1e30 is a range error, never a cast), and float fields are validated in float32,
// the precision they are stored in, so a config a run wrote always reads back. Error text is
// built only when a check fails.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace perceiver {

struct JsonLimits {
  int max_depth = 64;                    // nested objects/arrays
  size_t max_bytes = size_t(64) << 20;  // document size
};

// Parses JSON text; `what` names it in errors (a path, or "checkpoint x: metadata config"),
// `component` is the bracketed prefix ("config", "hf_config", ...).
nlohmann::json parse_json(std::string_view text, const std::string& what, const std::string& component = "config",
                          const JsonLimits& limits = {});

// Reads and parses a JSON file (errors name the file).
nlohmann::json read_json_file(const std::string& path, const std::string& component = "config",
                              const JsonLimits& limits = {});

// At most `max_chars` characters of a value's JSON text, for error messages.
std::string json_shown(const nlohmann::json& v, size_t max_chars = 80);

class JsonObject {
 public:
  enum class Mode { kStrict, kLenient };

  // A strict object named `path` in "[config] ..." messages (path "model" -> "model.key").
  JsonObject(const nlohmann::json& j, std::string path);
  // Any mode: `component` is the bracketed prefix, `where` names the object. Strict objects
  // join keys with "." ("model.key"); lenient ones with ": " ("file.json: key").
  JsonObject(const nlohmann::json& j, Mode mode, std::string component, std::string where);

  bool has(const std::string& key) const;
  const nlohmann::json* find(const std::string& key);  // marks the key as known; null if absent
  int64_t get_int(const std::string& key, int64_t def, int64_t min, int64_t max);
  double get_number(const std::string& key, double def, double min, double max);
  // A float32 field: the value rounded to float must lie in [float(min), float(max)].
  float get_float(const std::string& key, float def, double min, double max);
  bool get_bool(const std::string& key, bool def);
  std::string get_string(const std::string& key, const std::string& def,
                         const std::vector<std::string>& allowed = {});
  std::vector<int64_t> get_int_list(const std::string& key, const std::vector<int64_t>& def, int64_t min,
                                    int64_t max, size_t min_len, size_t max_len);
  // A list of min_len to max_len float32 values, each validated in float32 like get_float.
  std::vector<float> get_float_list(const std::string& key, const std::vector<float>& def, double min, double max,
                                    size_t min_len, size_t max_len);
  // A list of min_len to max_len non-empty strings.
  std::vector<std::string> get_string_list(const std::string& key, const std::vector<std::string>& def,
                                           size_t min_len, size_t max_len);
  // An integer n (meaning {n, n}) or a list of two, as HF's image_size / patch_size.
  std::vector<int64_t> get_int_or_pair(const std::string& key, const std::vector<int64_t>& def, int64_t min,
                                       int64_t max);
  // {"0": "name", ...} with the ids 0..n-1 each once (HF id2label); `def` when absent.
  std::vector<std::string> get_labels(const std::string& key, const std::vector<std::string>& def);
  JsonObject get_object(const std::string& key);  // an empty object when absent
  // Strict mode: throws listing every unknown key and the allowed ones. Lenient: no-op.
  void finish() const;

  // "[component] where.key" (or "where: key") for messages of callers' own checks.
  std::string name(const std::string& key) const;
  [[noreturn]] void fail(const std::string& key, const std::string& expected, const nlohmann::json& got) const;

 private:
  const nlohmann::json* j_;
  Mode mode_;
  std::string component_, where_;
  std::set<std::string> asked_;
};

// Converts a JSON number to int64 when it is integral and inside [min, max]; false otherwise
// (never undefined behaviour, whatever the stored type).
bool json_to_int(const nlohmann::json& v, int64_t min, int64_t max, int64_t& out);

}  // namespace perceiver
