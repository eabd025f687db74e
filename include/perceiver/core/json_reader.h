// Strict reading of JSON configuration objects: every value is type- and range-checked, and
// finish() rejects keys that were never asked for, so typos fail loudly. Errors read
// "[config] model.num_latents: expected an integer in [1, 65536], got -3".
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace perceiver {

class JsonObject {
 public:
  // `path` names this object in messages ("model", "train.schedule").
  JsonObject(const nlohmann::json& j, std::string path);

  bool has(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t def, int64_t min, int64_t max);
  double get_number(const std::string& key, double def, double min, double max);
  bool get_bool(const std::string& key, bool def);
  std::string get_string(const std::string& key, const std::string& def,
                         const std::vector<std::string>& allowed = {});
  std::vector<int64_t> get_int_list(const std::string& key, const std::vector<int64_t>& def,
                                    int64_t min, int64_t max, size_t min_len, size_t max_len);
  JsonObject get_object(const std::string& key);  // an empty object when absent
  // Throws listing every unknown key and the allowed ones.
  void finish() const;
  const std::string& path() const { return path_; }

 private:
  const nlohmann::json* find(const std::string& key);
  [[noreturn]] void fail(const std::string& key, const std::string& expected,
                         const nlohmann::json& got) const;
  nlohmann::json j_;
  std::string path_;
  std::set<std::string> asked_;
};

// Parses a JSON file, with the file name and position in errors.
nlohmann::json read_json_file(const std::string& path);

}  // namespace perceiver
