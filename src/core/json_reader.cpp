// The one JSON reader: bounded non-recursive parsing and typed, range-checked objects.
#include "perceiver/core/json_reader.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <sys/stat.h>

#include <fstream>
#include <limits>
#include <sstream>

#include "perceiver/core/error.h"

namespace perceiver {
namespace {

using json = nlohmann::json;

// Builds the document through nlohmann's DOM builder while tracking the nesting depth and the
// key path, so limits are enforced as the text streams in (nlohmann's parser is iterative) and a
// failure can name the key it happened under.
class BoundedBuilder {
 public:
  using number_integer_t = json::number_integer_t;
  using number_unsigned_t = json::number_unsigned_t;
  using number_float_t = json::number_float_t;
  using string_t = json::string_t;
  using binary_t = json::binary_t;

  BoundedBuilder(json& root, int max_depth) : dom_(root, false), max_depth_(max_depth) {}

  bool null() { return value() && dom_.null(); }
  bool boolean(bool v) { return value() && dom_.boolean(v); }
  bool number_integer(number_integer_t v) { return value() && dom_.number_integer(v); }
  bool number_unsigned(number_unsigned_t v) { return value() && dom_.number_unsigned(v); }
  bool number_float(number_float_t v, const string_t& s) { return value() && dom_.number_float(v, s); }
  bool string(string_t& v) { return value() && dom_.string(v); }
  bool binary(binary_t& v) { return value() && dom_.binary(v); }
  bool start_object(std::size_t n) { return open(false) && dom_.start_object(n); }
  bool key(string_t& k) {
    frames_.back().key = k;
    return dom_.key(k);
  }
  bool end_object() {
    frames_.pop_back();
    return dom_.end_object();
  }
  bool start_array(std::size_t n) { return open(true) && dom_.start_array(n); }
  bool end_array() {
    frames_.pop_back();
    return dom_.end_array();
  }
  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/, const nlohmann::detail::exception& ex) {
    value();  // the value that failed counts for the path ("list[2]")
    error_id_ = ex.id;
    error_ = ex.what();
    return false;
  }

  // The key path of the value being parsed: "model.num_latents", "layers[3].name", or "".
  std::string path() const {
    std::string p;
    for (const Frame& f : frames_) {
      if (f.array) p += "[" + std::to_string(f.count == 0 ? 0 : f.count - 1) + "]";
      else if (f.count) p += (p.empty() ? "" : ".") + f.key;
    }
    return p;
  }
  bool depth_exceeded() const { return depth_exceeded_; }
  int error_id() const { return error_id_; }
  const std::string& error() const { return error_; }

 private:
  struct Frame {
    bool array = false;
    size_t count = 0;  // values started in this container
    std::string key;   // objects: the current key
  };
  bool value() {  // a value starts in the innermost container
    if (!frames_.empty()) ++frames_.back().count;
    return true;
  }
  bool open(bool array) {
    value();
    if (static_cast<int>(frames_.size()) >= max_depth_) {
      depth_exceeded_ = true;
      return false;
    }
    frames_.push_back(Frame{array, 0, {}});
    return true;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  int max_depth_;
  std::vector<Frame> frames_;
  bool depth_exceeded_ = false;
  int error_id_ = 0;
  std::string error_;
};

// nlohmann messages start "[json.exception.parse_error.101] "; keep what follows.
std::string strip_exception_prefix(const std::string& m) {
  const size_t close = m.find("] ");
  return m.rfind("[json.exception.", 0) == 0 && close != std::string::npos ? m.substr(close + 2) : m;
}

std::string range_text(int64_t min, int64_t max) {
  return "[" + std::to_string(min) + ", " + std::to_string(max) + "]";
}

std::string range_text(double min, double max) {
  std::ostringstream os;
  os << "[" << min << ", " << max << "]";
  return os.str();
}

const json& empty_object() {
  static const json e = json::object();
  return e;
}

}  // namespace

json parse_json(std::string_view text, const std::string& what, const std::string& component,
                const JsonLimits& limits) {
  if (text.size() > limits.max_bytes)
    throw_error("[", component, "] ", what, ": JSON document of ", text.size(), " bytes exceeds the limit of ",
                limits.max_bytes, " bytes");
  json root;
  BoundedBuilder builder(root, limits.max_depth);
  bool ok = false;
  try {
    ok = json::sax_parse(text.begin(), text.end(), &builder);
  } catch (const std::exception& e) {  // allocation failures and nlohmann's size checks
    throw_error("[", component, "] ", what, ": cannot parse JSON: ", e.what());
  }
  if (ok) return root;
  const std::string at = builder.path().empty() ? std::string() : builder.path() + ": ";
  if (builder.depth_exceeded())
    throw_error("[", component, "] ", what, ": ", at, "JSON nesting deeper than ", limits.max_depth,
                " levels (the limit for configuration files)");
  if (builder.error_id() == 406)  // number overflow
    throw_error("[", component, "] ", what, ": ", at, strip_exception_prefix(builder.error()),
                ": the number is outside the range of a double");
  throw_error("[", component, "] ", what, ": invalid JSON: ", at, strip_exception_prefix(builder.error()));
}

json read_json_file(const std::string& path, const std::string& component, const JsonLimits& limits) {
  // A FIFO, device or directory would block or never end: only regular files are read.
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw_error("[", component, "] ", path, ": expected a regular JSON file, got ",
                S_ISDIR(st.st_mode) ? "a directory" : "a device, FIFO or socket");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error("[", component, "] ", path, ": cannot open file: ", std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) throw_error("[", component, "] ", path, ": cannot read file");
  if (static_cast<uint64_t>(size) > limits.max_bytes)
    throw_error("[", component, "] ", path, ": file of ", size, " bytes exceeds the limit of ", limits.max_bytes,
                " bytes for a JSON document");
  in.seekg(0);
  std::string text(static_cast<size_t>(size), '\0');
  if (size > 0 && !in.read(text.data(), size)) throw_error("[", component, "] ", path, ": cannot read file");
  return parse_json(text, path, component, limits);
}

std::string json_shown(const json& v, size_t max_chars) {
  std::string s;
  if (v.is_array() && v.size() > 64) s = "[an array of " + std::to_string(v.size()) + " values]";
  else if (v.is_object() && v.size() > 64) s = "{an object of " + std::to_string(v.size()) + " keys}";
  else s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > max_chars && max_chars >= 3) s = s.substr(0, max_chars - 3) + "...";
  return s;
}

bool json_to_int(const json& v, int64_t min, int64_t max, int64_t& out) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (max < 0 || u > static_cast<uint64_t>(max)) return false;
    out = static_cast<int64_t>(u);
  } else if (v.is_number_integer()) {
    out = v.get<int64_t>();
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    // Compare in double before any cast: 2^63 is exactly representable, so d < 2^63 keeps the
    // cast defined; non-integral and non-finite values fail.
    if (!std::isfinite(d) || std::trunc(d) != d || d < -9223372036854775808.0 || d >= 9223372036854775808.0)
      return false;
    out = static_cast<int64_t>(d);
  } else {
    return false;
  }
  return out >= min && out <= max;
}

JsonObject::JsonObject(const json& j, std::string path)
    : JsonObject(j, Mode::kStrict, "config", std::move(path)) {}

JsonObject::JsonObject(const json& j, Mode mode, std::string component, std::string where)
    : j_(j.is_null() ? &empty_object() : &j), mode_(mode), component_(std::move(component)), where_(std::move(where)) {
  if (!j_->is_object())
    throw_error("[", component_, "] ", where_, ": expected a JSON object, got ", json_shown(*j_));
}

std::string JsonObject::name(const std::string& key) const {
  std::string n = "[" + component_ + "] " + where_;
  if (!where_.empty()) n += mode_ == Mode::kStrict ? "." : ": ";
  return n + key;
}

void JsonObject::fail(const std::string& key, const std::string& expected, const json& got) const {
  throw_error(name(key), ": expected ", expected, ", got ", json_shown(got));
}

bool JsonObject::has(const std::string& key) const {
  auto it = j_->find(key);
  return it != j_->end() && !it->is_null();
}

const json* JsonObject::find(const std::string& key) {
  asked_.insert(key);
  auto it = j_->find(key);
  if (it == j_->end() || it->is_null()) return nullptr;
  return &*it;
}

int64_t JsonObject::get_int(const std::string& key, int64_t def, int64_t min, int64_t max) {
  const json* v = find(key);
  if (!v) return def;
  int64_t x = 0;
  if (!json_to_int(*v, min, max, x)) fail(key, "an integer in " + range_text(min, max), *v);
  return x;
}

double JsonObject::get_number(const std::string& key, double def, double min, double max) {
  const json* v = find(key);
  if (!v) return def;
  if (!v->is_number() || !(v->get<double>() >= min && v->get<double>() <= max))
    fail(key, "a number in " + range_text(min, max), *v);
  return v->get<double>();
}

float JsonObject::get_float(const std::string& key, float def, double min, double max) {
  const json* v = find(key);
  if (!v) return def;
  const float lo = static_cast<float>(min), hi = static_cast<float>(max);
  // Outside float's range the conversion would be undefined: compare in double first.
  const bool in_float_range = v->is_number() && std::fabs(v->get<double>()) <= std::numeric_limits<float>::max();
  const float x = in_float_range ? static_cast<float>(v->get<double>()) : 0.0f;
  if (!in_float_range || !(x >= lo && x <= hi)) fail(key, "a number in " + range_text(min, max), *v);
  return x;
}

bool JsonObject::get_bool(const std::string& key, bool def) {
  const json* v = find(key);
  if (!v) return def;
  if (!v->is_boolean()) fail(key, "true or false", *v);
  return v->get<bool>();
}

std::string JsonObject::get_string(const std::string& key, const std::string& def,
                                   const std::vector<std::string>& allowed) {
  const json* v = find(key);
  if (!v) return def;
  bool ok = v->is_string();
  if (ok && !allowed.empty()) {
    ok = false;
    for (const auto& a : allowed) ok = ok || a == v->get_ref<const std::string&>();
  }
  if (!ok) {
    std::string exp = "a string";
    if (allowed.size() == 1) exp = "\"" + allowed[0] + "\"";
    if (allowed.size() > 1) {
      exp = "one of";
      for (size_t i = 0; i < allowed.size(); ++i) exp += (i ? ", \"" : " \"") + allowed[i] + "\"";
    }
    fail(key, exp, *v);
  }
  return v->get<std::string>();
}

namespace {
// "a list of 2" / "a list of 0 to 8", the start of a list field's expectation.
std::string list_of(size_t min_len, size_t max_len) {
  std::string exp = "a list of " + std::to_string(min_len);
  if (max_len != min_len) exp += " to " + std::to_string(max_len);
  return exp;
}
}  // namespace

std::vector<int64_t> JsonObject::get_int_list(const std::string& key, const std::vector<int64_t>& def, int64_t min,
                                              int64_t max, size_t min_len, size_t max_len) {
  const json* v = find(key);
  if (!v) return def;
  std::vector<int64_t> out;
  bool ok = v->is_array() && v->size() >= min_len && v->size() <= max_len;
  for (size_t i = 0; ok && i < v->size(); ++i) {
    int64_t x = 0;
    ok = json_to_int((*v)[i], min, max, x);
    out.push_back(x);
  }
  if (!ok) {
    fail(key, list_of(min_len, max_len) + " integers in " + range_text(min, max), *v);
  }
  return out;
}

std::vector<std::string> JsonObject::get_string_list(const std::string& key, const std::vector<std::string>& def,
                                                    size_t min_len, size_t max_len) {
  const json* v = find(key);
  if (!v) return def;
  std::vector<std::string> out;
  bool ok = v->is_array() && v->size() >= min_len && v->size() <= max_len;
  for (size_t i = 0; ok && i < v->size(); ++i) {
    ok = (*v)[i].is_string() && !(*v)[i].get_ref<const std::string&>().empty();
    if (ok) out.push_back((*v)[i].get<std::string>());
  }
  if (!ok) {
    fail(key, list_of(min_len, max_len) + " non-empty strings", *v);
  }
  return out;
}

std::vector<float> JsonObject::get_float_list(const std::string& key, const std::vector<float>& def, double min,
                                              double max, size_t min_len, size_t max_len) {
  const json* v = find(key);
  if (!v) return def;
  const float lo = static_cast<float>(min), hi = static_cast<float>(max);
  std::vector<float> out;
  bool ok = v->is_array() && v->size() >= min_len && v->size() <= max_len;
  for (size_t i = 0; ok && i < v->size(); ++i) {
    const json& e = (*v)[i];
    ok = e.is_number() && std::fabs(e.get<double>()) <= std::numeric_limits<float>::max();
    const float x = ok ? static_cast<float>(e.get<double>()) : 0.0f;
    ok = ok && x >= lo && x <= hi;
    out.push_back(x);
  }
  if (!ok) {
    fail(key, list_of(min_len, max_len) + " numbers in " + range_text(min, max), *v);
  }
  return out;
}

std::vector<int64_t> JsonObject::get_int_or_pair(const std::string& key, const std::vector<int64_t>& def,
                                                 int64_t min, int64_t max) {
  const json* v = find(key);
  if (!v) return def;
  int64_t a = 0, b = 0;
  if (v->is_number() && json_to_int(*v, min, max, a)) return {a, a};
  if (v->is_array() && v->size() == 2 && json_to_int((*v)[0], min, max, a) && json_to_int((*v)[1], min, max, b))
    return {a, b};
  fail(key, "an integer or a list of 2 integers in " + range_text(min, max), *v);
}

std::vector<std::string> JsonObject::get_labels(const std::string& key, const std::vector<std::string>& def) {
  const json* v = find(key);
  if (!v) return def;
  if (!v->is_object() || v->empty()) fail(key, "an object {\"0\": name, ...}", *v);
  const size_t n = v->size();
  std::vector<std::string> labels(n);
  std::vector<bool> seen(n, false);
  for (auto it = v->begin(); it != v->end(); ++it) {
    const std::string& k = it.key();
    // A decimal id without sign or leading zeros, below n.
    bool ok = !k.empty() && k.size() <= 19 && k.find_first_not_of("0123456789") == std::string::npos &&
              (k.size() == 1 || k[0] != '0') && it.value().is_string();
    const uint64_t id = ok ? std::stoull(k) : 0;
    ok = ok && id < n && !seen[id];
    if (!ok) fail(key, "the ids 0.." + std::to_string(n - 1) + " each once, mapped to label strings", json{{k, it.value()}});
    seen[id] = true;
    labels[id] = it.value().get<std::string>();
  }
  return labels;
}

JsonObject JsonObject::get_object(const std::string& key) {
  const json* v = find(key);
  const std::string where = where_.empty() ? key : where_ + (mode_ == Mode::kStrict ? "." : ": ") + key;
  if (!v) return JsonObject(empty_object(), mode_, component_, where);
  if (!v->is_object()) fail(key, "an object", *v);
  return JsonObject(*v, mode_, component_, where);
}

void JsonObject::finish() const {
  if (mode_ == Mode::kLenient) return;
  std::vector<std::string> unknown;
  for (auto it = j_->begin(); it != j_->end(); ++it)
    if (!asked_.count(it.key())) unknown.push_back(it.key());
  if (unknown.empty()) return;
  std::string msg = "[" + component_ + "] " + where_ + ": unknown key";
  msg += unknown.size() > 1 ? "s " : " ";
  for (size_t i = 0; i < unknown.size(); ++i) msg += (i ? ", '" : "'") + unknown[i] + "'";
  msg += "; allowed keys:";
  for (const auto& a : asked_) msg += " " + a;
  throw Error(msg);
}

}  // namespace perceiver
