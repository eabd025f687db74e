// Strict JSON configuration reading.
#include "perceiver/core/json_reader.h"

#include <fstream>
#include <sstream>

#include "perceiver/core/error.h"

namespace perceiver {

JsonObject::JsonObject(const nlohmann::json& j, std::string path) : j_(j), path_(std::move(path)) {
  if (j_.is_null()) j_ = nlohmann::json::object();
  check(j_.is_object(), "[config] ", path_, ": expected a JSON object, got ", j_.dump());
}

bool JsonObject::has(const std::string& key) const { return j_.contains(key) && !j_.at(key).is_null(); }

const nlohmann::json* JsonObject::find(const std::string& key) {
  asked_.insert(key);
  auto it = j_.find(key);
  if (it == j_.end() || it->is_null()) return nullptr;
  return &*it;
}

void JsonObject::fail(const std::string& key, const std::string& expected,
                      const nlohmann::json& got) const {
  std::string shown = got.dump();
  if (shown.size() > 80) shown = shown.substr(0, 77) + "...";
  throw_error("[config] ", path_, ".", key, ": expected ", expected, ", got ", shown);
}

int64_t JsonObject::get_int(const std::string& key, int64_t def, int64_t min, int64_t max) {
  const nlohmann::json* v = find(key);
  if (!v) return def;
  std::ostringstream exp;
  exp << "an integer in [" << min << ", " << max << "]";
  bool integral = v->is_number_integer() ||
                  (v->is_number_float() && v->get<double>() == static_cast<double>(static_cast<int64_t>(v->get<double>())));
  if (!integral) fail(key, exp.str(), *v);
  const int64_t x = v->is_number_integer() ? v->get<int64_t>() : static_cast<int64_t>(v->get<double>());
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) fail(key, exp.str(), *v);
  if (x < min || x > max) fail(key, exp.str(), *v);
  return x;
}

double JsonObject::get_number(const std::string& key, double def, double min, double max) {
  const nlohmann::json* v = find(key);
  if (!v) return def;
  std::ostringstream exp;
  exp << "a number in [" << min << ", " << max << "]";
  if (!v->is_number()) fail(key, exp.str(), *v);
  const double x = v->get<double>();
  if (!(x >= min && x <= max)) fail(key, exp.str(), *v);
  return x;
}

bool JsonObject::get_bool(const std::string& key, bool def) {
  const nlohmann::json* v = find(key);
  if (!v) return def;
  if (!v->is_boolean()) fail(key, "true or false", *v);
  return v->get<bool>();
}

std::string JsonObject::get_string(const std::string& key, const std::string& def,
                                   const std::vector<std::string>& allowed) {
  const nlohmann::json* v = find(key);
  std::string exp = "a string";
  if (!allowed.empty()) {
    exp = "one of";
    for (size_t i = 0; i < allowed.size(); ++i) exp += (i ? ", \"" : " \"") + allowed[i] + "\"";
  }
  if (!v) return def;
  if (!v->is_string()) fail(key, exp, *v);
  std::string s = v->get<std::string>();
  if (!allowed.empty()) {
    bool ok = false;
    for (const auto& a : allowed) ok = ok || a == s;
    if (!ok) fail(key, exp, *v);
  }
  return s;
}

std::vector<int64_t> JsonObject::get_int_list(const std::string& key, const std::vector<int64_t>& def,
                                              int64_t min, int64_t max, size_t min_len, size_t max_len) {
  const nlohmann::json* v = find(key);
  if (!v) return def;
  std::ostringstream exp;
  exp << "a list of " << min_len;
  if (max_len != min_len) exp << " to " << max_len;
  exp << " integers in [" << min << ", " << max << "]";
  if (!v->is_array() || v->size() < min_len || v->size() > max_len) fail(key, exp.str(), *v);
  std::vector<int64_t> out;
  for (const auto& e : *v) {
    if (!e.is_number_integer()) fail(key, exp.str(), *v);
    const int64_t x = e.get<int64_t>();
    if (x < min || x > max) fail(key, exp.str(), *v);
    out.push_back(x);
  }
  return out;
}

JsonObject JsonObject::get_object(const std::string& key) {
  const nlohmann::json* v = find(key);
  if (!v) return JsonObject(nlohmann::json::object(), path_ + "." + key);
  if (!v->is_object()) fail(key, "an object", *v);
  return JsonObject(*v, path_ + "." + key);
}

void JsonObject::finish() const {
  std::vector<std::string> unknown;
  for (auto it = j_.begin(); it != j_.end(); ++it)
    if (!asked_.count(it.key())) unknown.push_back(it.key());
  if (unknown.empty()) return;
  std::string msg = "[config] " + path_ + ": unknown key";
  msg += unknown.size() > 1 ? "s " : " ";
  for (size_t i = 0; i < unknown.size(); ++i) msg += (i ? ", '" : "'") + unknown[i] + "'";
  msg += "; allowed keys:";
  for (const auto& a : asked_) msg += " " + a;
  throw Error(msg);
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  check(in.good(), "[config] ", path, ": cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw_error("[config] ", path, ": invalid JSON: ", e.what());
  }
}

}  // namespace perceiver
