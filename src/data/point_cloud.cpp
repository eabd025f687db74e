// Mesh and point-set readers (OFF, PLY, XYZ, VRML IndexedFaceSet) and surface sampling; see
// point_cloud.h. Text formats are read line by line (OFF, XYZ, ascii PLY) or as a token stream
// (VRML); every count is checked against the bytes left before anything is reserved for it.
#include "perceiver/data/point_cloud.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <system_error>

#include "perceiver/core/error.h"
#include "perceiver/io/atomic_file.h"

namespace perceiver::data {
namespace {

[[noreturn]] void fail_at(const std::string& what, int64_t line, const std::string& msg) {
  throw_error("[point_cloud] ", what, ":", line, ": ", msg);
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

// Lines of a text with '#' comments and surrounding blanks removed; empty lines skipped.
class Lines {
 public:
  Lines(std::string_view text, size_t start = 0) : text_(text), pos_(start) {}
  bool next(std::string_view& line) {
    while (pos_ < text_.size()) {
      size_t end = text_.find('\n', pos_);
      if (end == std::string_view::npos) end = text_.size();
      std::string_view l = text_.substr(pos_, end - pos_);
      pos_ = end + 1;
      ++number_;
      if (const size_t hash = l.find('#'); hash != std::string_view::npos) l = l.substr(0, hash);
      while (!l.empty() && is_space(l.front())) l.remove_prefix(1);
      while (!l.empty() && is_space(l.back())) l.remove_suffix(1);
      if (!l.empty()) {
        line = l;
        return true;
      }
    }
    return false;
  }
  int64_t number() const { return number_; }
  size_t bytes_left() const { return pos_ < text_.size() ? text_.size() - pos_ : 0; }

 private:
  std::string_view text_;
  size_t pos_;
  int64_t number_ = 0;
};

// The fields of a line, split at blanks (and commas when `commas`).
std::vector<std::string_view> fields(std::string_view line, bool commas = false) {
  std::vector<std::string_view> out;
  size_t i = 0;
  auto sep = [&](char c) { return is_space(c) || (commas && c == ','); };
  while (i < line.size()) {
    while (i < line.size() && sep(line[i])) ++i;
    const size_t start = i;
    while (i < line.size() && !sep(line[i])) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool parse_double(std::string_view s, double& v) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size();
}

bool parse_int(std::string_view s, int64_t& v) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size();
}

// A finite coordinate, or an error naming the line.
float coordinate(std::string_view s, const std::string& what, int64_t line) {
  double v = 0;
  if (!parse_double(s, v)) fail_at(what, line, "expected a number, got '" + std::string(s) + "'");
  if (!std::isfinite(v) || std::fabs(v) > 3.0e38)
    fail_at(what, line, "coordinate " + std::string(s) + " is not a finite float32 value");
  return static_cast<float>(v);
}

int64_t count_field(std::string_view s, const std::string& what, int64_t line, const char* name) {
  int64_t v = 0;
  if (!parse_int(s, v) || v < 0 || v > kMaxMeshElements)
    fail_at(what, line, std::string("expected a ") + name + " count in [0, " + std::to_string(kMaxMeshElements) +
                            "], got '" + std::string(s) + "'");
  return v;
}

// Refuses a count that the bytes left cannot hold at min_bytes per element.
void check_room(int64_t count, int64_t min_bytes, size_t bytes_left, const std::string& what, int64_t line,
                const char* name) {
  if (count > 0 && static_cast<double>(count) * min_bytes > static_cast<double>(bytes_left) + 1)
    fail_at(what, line, std::to_string(count) + " " + name + " cannot fit in the " + std::to_string(bytes_left) +
                            " bytes left in the file");
}

// Appends the fan triangulation (i0, i_k, i_k+1) of one polygon after checking its indices.
void add_polygon(Mesh& mesh, const std::vector<int64_t>& poly, int64_t base, int64_t num_vertices,
                 const std::string& what, int64_t line) {
  if (poly.size() < 3)
    fail_at(what, line, "a face needs at least 3 vertices, got " + std::to_string(poly.size()));
  for (int64_t i : poly)
    if (i < 0 || i >= num_vertices)
      fail_at(what, line, "vertex index " + std::to_string(i) + " is outside [0, " + std::to_string(num_vertices) + ")");
  for (size_t k = 1; k + 1 < poly.size(); ++k)
    for (int64_t i : {poly[0], poly[k], poly[k + 1]}) mesh.triangles.push_back(static_cast<int32_t>(base + i));
}

// ---- OFF ----------------------------------------------------------------------------------

// "OFF", "COFF", "NOFF", "CNOFF", "STOFF", ...: the letters before OFF name extra per-vertex data.
bool off_keyword(std::string_view s) {
  if (s.size() < 3 || s.substr(s.size() - 3) != "OFF") return false;
  for (char c : s.substr(0, s.size() - 3))
    if (c != 'C' && c != 'N' && c != 'S' && c != 'T') return false;
  return true;
}

}  // namespace

Mesh decode_off(std::string_view text, const std::string& what) {
  Lines lines(text);
  std::string_view line;
  if (!lines.next(line)) throw_error("[point_cloud] ", what, ": empty file, expected an OFF header");
  std::vector<std::string_view> f = fields(line);
  // the keyword, possibly glued to the first count (ModelNet's "OFF490 518 0")
  const size_t off_end = f[0].find("OFF");
  if (off_end == std::string_view::npos || !off_keyword(f[0].substr(0, off_end + 3)))
    fail_at(what, lines.number(), "expected the OFF keyword (OFF, COFF, NOFF, CNOFF), got '" + std::string(f[0]) + "'");
  std::vector<std::string_view> counts;
  if (f[0].size() > off_end + 3) counts.push_back(f[0].substr(off_end + 3));
  counts.insert(counts.end(), f.begin() + 1, f.end());
  if (counts.empty()) {
    if (!lines.next(line)) fail_at(what, lines.number(), "missing the vertex and face counts after OFF");
    counts = fields(line);
  }
  if (counts.size() < 2) fail_at(what, lines.number(), "expected 'vertices faces [edges]' counts");
  const int64_t nv = count_field(counts[0], what, lines.number(), "vertex");
  const int64_t nf = count_field(counts[1], what, lines.number(), "face");
  check_room(nv, 6, lines.bytes_left(), what, lines.number(), "vertices");  // "0 0 0\n"; faces "n\n" at least
  check_room(nf, 2, lines.bytes_left() - std::min<size_t>(lines.bytes_left(), nv * 6), what, lines.number(), "faces");
  Mesh mesh;
  mesh.vertices.reserve(static_cast<size_t>(nv) * 3);
  for (int64_t v = 0; v < nv; ++v) {
    if (!lines.next(line)) fail_at(what, lines.number(), "file ends after " + std::to_string(v) + " of " +
                                                             std::to_string(nv) + " vertices");
    f = fields(line);
    if (f.size() < 3) fail_at(what, lines.number(), "a vertex needs x y z, got '" + std::string(line) + "'");
    for (int k = 0; k < 3; ++k) mesh.vertices.push_back(coordinate(f[k], what, lines.number()));
  }
  std::vector<int64_t> poly;
  for (int64_t i = 0; i < nf; ++i) {
    if (!lines.next(line)) fail_at(what, lines.number(), "file ends after " + std::to_string(i) + " of " +
                                                             std::to_string(nf) + " faces");
    f = fields(line);
    int64_t n = 0;
    if (!parse_int(f[0], n) || n < 0 || static_cast<size_t>(n) + 1 > f.size())
      fail_at(what, lines.number(), "expected a face 'n i_1 ... i_n', got '" + std::string(line) + "'");
    poly.assign(static_cast<size_t>(n), 0);
    for (int64_t k = 0; k < n; ++k)
      if (!parse_int(f[static_cast<size_t>(k) + 1], poly[static_cast<size_t>(k)]))
        fail_at(what, lines.number(), "expected a vertex index, got '" + std::string(f[static_cast<size_t>(k) + 1]) + "'");
    add_polygon(mesh, poly, 0, nv, what, lines.number());
  }
  if (mesh.vertices.empty()) throw_error("[point_cloud] ", what, ": no vertices");
  return mesh;
}

// ---- XYZ ----------------------------------------------------------------------------------

Mesh decode_xyz(std::string_view text, const std::string& what) {
  Lines lines(text);
  std::string_view line;
  Mesh mesh;
  while (lines.next(line)) {
    const std::vector<std::string_view> f = fields(line, true);
    if (f.size() < 3) fail_at(what, lines.number(), "a point needs x y z, got '" + std::string(line) + "'");
    for (int k = 0; k < 3; ++k) mesh.vertices.push_back(coordinate(f[k], what, lines.number()));
    if (mesh.num_vertices() > kMaxMeshElements)
      fail_at(what, lines.number(), "more than " + std::to_string(kMaxMeshElements) + " points");
  }
  if (mesh.vertices.empty()) throw_error("[point_cloud] ", what, ": no points (expected lines of x y z)");
  return mesh;
}

// ---- PLY ----------------------------------------------------------------------------------

namespace {

enum class PlyType { kI8, kU8, kI16, kU16, kI32, kU32, kF32, kF64 };

bool ply_type(std::string_view s, PlyType& t) {
  static const std::pair<const char*, PlyType> kNames[] = {
      {"char", PlyType::kI8},    {"int8", PlyType::kI8},     {"uchar", PlyType::kU8},  {"uint8", PlyType::kU8},
      {"short", PlyType::kI16},  {"int16", PlyType::kI16},   {"ushort", PlyType::kU16}, {"uint16", PlyType::kU16},
      {"int", PlyType::kI32},    {"int32", PlyType::kI32},   {"uint", PlyType::kU32},  {"uint32", PlyType::kU32},
      {"float", PlyType::kF32},  {"float32", PlyType::kF32}, {"double", PlyType::kF64}, {"float64", PlyType::kF64}};
  for (const auto& [name, type] : kNames)
    if (s == name) {
      t = type;
      return true;
    }
  return false;
}

int ply_size(PlyType t) {
  switch (t) {
    case PlyType::kI8: case PlyType::kU8: return 1;
    case PlyType::kI16: case PlyType::kU16: return 2;
    case PlyType::kI32: case PlyType::kU32: case PlyType::kF32: return 4;
    default: return 8;
  }
}

bool ply_is_integer(PlyType t) { return t != PlyType::kF32 && t != PlyType::kF64; }

struct PlyProperty {
  std::string name;
  PlyType type = PlyType::kF32;
  bool is_list = false;
  PlyType count_type = PlyType::kU8;
};

struct PlyElement {
  std::string name;
  int64_t count = 0;
  std::vector<PlyProperty> properties;
  int64_t line = 0;  // of its header line, for errors
};

// Reads one binary value as double; big-endian data is byte-swapped.
class PlyCursor {
 public:
  PlyCursor(std::string_view bytes, size_t pos, bool big_endian, const std::string& what)
      : bytes_(bytes), pos_(pos), big_(big_endian), what_(what) {}
  double read(PlyType t, const std::string& element, int64_t index) {
    const int n = ply_size(t);
    if (bytes_.size() - pos_ < static_cast<size_t>(n))
      throw_error("[point_cloud] ", what_, ": file ends inside ", element, " ", index);
    unsigned char b[8];
    std::memcpy(b, bytes_.data() + pos_, n);
    pos_ += n;
    if (big_) std::reverse(b, b + n);
    switch (t) {
      case PlyType::kI8: return static_cast<int8_t>(b[0]);
      case PlyType::kU8: return b[0];
      case PlyType::kI16: { int16_t v; std::memcpy(&v, b, 2); return v; }
      case PlyType::kU16: { uint16_t v; std::memcpy(&v, b, 2); return v; }
      case PlyType::kI32: { int32_t v; std::memcpy(&v, b, 4); return v; }
      case PlyType::kU32: { uint32_t v; std::memcpy(&v, b, 4); return v; }
      case PlyType::kF32: { float v; std::memcpy(&v, b, 4); return v; }
      default: { double v; std::memcpy(&v, b, 8); return v; }
    }
  }
  size_t bytes_left() const { return bytes_.size() - pos_; }

 private:
  std::string_view bytes_;
  size_t pos_;
  bool big_;
  const std::string& what_;
};

// The header up to end_header: the format and the elements; *body_start is the first body byte.
std::vector<PlyElement> read_ply_header(std::string_view bytes, const std::string& what, std::string& format,
                                        size_t* body_start, int64_t* body_line) {
  if (bytes.substr(0, 3) != "ply" || bytes.size() < 4 || (bytes[3] != '\n' && bytes[3] != '\r'))
    throw_error("[point_cloud] ", what, ": not a PLY file (expected 'ply' on the first line)");
  std::vector<PlyElement> elements;
  size_t pos = 0;
  int64_t line_no = 0;
  while (true) {
    const size_t end = bytes.find('\n', pos);
    if (end == std::string_view::npos) throw_error("[point_cloud] ", what, ": the header has no end_header line");
    std::string_view line = bytes.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::vector<std::string_view> f = fields(line);
    if (f.empty() || f[0] == "ply" || f[0] == "comment" || f[0] == "obj_info") continue;
    if (f[0] == "end_header") break;
    if (f[0] == "format") {
      if (f.size() != 3 || (f[1] != "ascii" && f[1] != "binary_little_endian" && f[1] != "binary_big_endian"))
        fail_at(what, line_no, "expected 'format ascii|binary_little_endian|binary_big_endian 1.0', got '" +
                                   std::string(line) + "'");
      format = std::string(f[1]);
    } else if (f[0] == "element") {
      if (f.size() != 3) fail_at(what, line_no, "expected 'element NAME COUNT', got '" + std::string(line) + "'");
      elements.push_back({std::string(f[1]), count_field(f[2], what, line_no, "element"), {}, line_no});
    } else if (f[0] == "property") {
      if (elements.empty()) fail_at(what, line_no, "a property before any element");
      PlyProperty p;
      bool ok = false;
      if (f.size() == 5 && f[1] == "list")
        ok = ply_type(f[2], p.count_type) && ply_is_integer(p.count_type) && ply_type(f[3], p.type);
      else if (f.size() == 3)
        ok = ply_type(f[1], p.type);
      if (!ok)
        fail_at(what, line_no, "expected 'property TYPE NAME' or 'property list COUNT_TYPE TYPE NAME' with types "
                               "char, uchar, short, ushort, int, uint, float, double (or int8 ... float64), got '" +
                                   std::string(line) + "'");
      p.is_list = f.size() == 5;
      p.name = std::string(f.back());
      elements.back().properties.push_back(p);
    } else {
      fail_at(what, line_no, "unknown header line '" + std::string(line) + "'");
    }
  }
  if (format.empty()) throw_error("[point_cloud] ", what, ": the header has no format line");
  *body_start = pos;
  *body_line = line_no;
  return elements;
}

int property_index(const PlyElement& e, std::initializer_list<const char*> names) {
  for (size_t i = 0; i < e.properties.size(); ++i)
    for (const char* n : names)
      if (e.properties[i].name == n) return static_cast<int>(i);
  return -1;
}

}  // namespace

Mesh decode_ply(std::string_view bytes, const std::string& what) {
  std::string format;
  size_t body = 0;
  int64_t body_line = 0;
  const std::vector<PlyElement> elements = read_ply_header(bytes, what, format, &body, &body_line);
  const PlyElement* vertex = nullptr;
  int xyz[3] = {-1, -1, -1};
  int face_list = -1;
  for (const PlyElement& e : elements) {
    if (e.name == "vertex") {
      vertex = &e;
      for (int k = 0; k < 3; ++k) {
        xyz[k] = property_index(e, {k == 0 ? "x" : k == 1 ? "y" : "z"});
        if (xyz[k] < 0 || e.properties[xyz[k]].is_list)
          fail_at(what, e.line, std::string("element vertex needs a scalar property ") + "xyz"[k]);
      }
    } else if (e.name == "face") {
      face_list = property_index(e, {"vertex_indices", "vertex_index"});
      if (face_list < 0 || !e.properties[face_list].is_list || !ply_is_integer(e.properties[face_list].type))
        fail_at(what, e.line, "element face needs an integer list property vertex_indices (or vertex_index)");
    }
  }
  if (vertex == nullptr) throw_error("[point_cloud] ", what, ": no 'element vertex' in the header");
  const bool ascii = format == "ascii";
  Mesh mesh;
  int64_t num_vertices = vertex->count;
  double c[3] = {0, 0, 0};  // the vertex being read: x, y, z wherever they sit among its properties
  std::vector<int64_t> poly;
  Lines lines(bytes, body);
  PlyCursor cursor(bytes, body, format == "binary_big_endian", what);
  for (const PlyElement& e : elements) {
    // the smallest an instance can be: one byte per ascii value plus a separator, or the fixed sizes
    int64_t min_bytes = 0;
    for (const PlyProperty& p : e.properties) min_bytes += ascii ? 2 : ply_size(p.is_list ? p.count_type : p.type);
    check_room(e.count, std::max<int64_t>(min_bytes, 1), ascii ? lines.bytes_left() : cursor.bytes_left(), what,
               e.line, (e.name + " elements").c_str());
    if (&e == vertex) mesh.vertices.reserve(static_cast<size_t>(e.count) * 3);
    for (int64_t i = 0; i < e.count; ++i) {
      std::vector<std::string_view> f;
      size_t next_field = 0;
      int64_t line = 0;
      if (ascii) {
        std::string_view text;
        if (!lines.next(text)) fail_at(what, lines.number() + body_line, "file ends inside " + e.name + " " + std::to_string(i));
        f = fields(text);
        line = lines.number() + body_line;
      }
      auto value = [&](PlyType t) -> double {
        if (!ascii) return cursor.read(t, e.name, i);
        if (next_field >= f.size()) fail_at(what, line, "too few values for " + e.name + " " + std::to_string(i));
        double v = 0;
        if (!parse_double(f[next_field], v))
          fail_at(what, line, "expected a number, got '" + std::string(f[next_field]) + "'");
        ++next_field;
        return v;
      };
      for (size_t p = 0; p < e.properties.size(); ++p) {
        const PlyProperty& prop = e.properties[p];
        if (!prop.is_list) {
          const double v = value(prop.type);
          if (&e == vertex)
            for (int k = 0; k < 3; ++k)
              if (static_cast<int>(p) == xyz[k]) c[k] = v;
          continue;
        }
        const double n = value(prop.count_type);
        if (!(n >= 0 && n <= 65535) || n != std::floor(n))
          fail_at(what, ascii ? line : e.line, "list length " + std::to_string(n) + " of " + e.name + " " +
                                                   std::to_string(i) + " is outside [0, 65535]");
        const bool is_face = e.name == "face" && static_cast<int>(p) == face_list;
        if (is_face) poly.clear();
        for (int64_t k = 0; k < static_cast<int64_t>(n); ++k) {
          const double idx = value(prop.type);
          if (!is_face) continue;
          if (!(idx >= 0 && idx < static_cast<double>(num_vertices)) || idx != std::floor(idx))
            fail_at(what, ascii ? line : e.line, "face " + std::to_string(i) + ": vertex index " + std::to_string(idx) +
                                                     " is not an integer in [0, " + std::to_string(num_vertices) + ")");
          poly.push_back(static_cast<int64_t>(idx));
        }
        if (is_face) add_polygon(mesh, poly, 0, num_vertices, what, ascii ? line : e.line);
      }
      if (&e == vertex) {
        for (int k = 0; k < 3; ++k) {
          if (!std::isfinite(c[k]) || std::fabs(c[k]) > 3.0e38)
            throw_error("[point_cloud] ", what, ": vertex ", i, " has a non-finite coordinate");
          mesh.vertices.push_back(static_cast<float>(c[k]));
        }
      }
    }
  }
  if (mesh.vertices.empty()) throw_error("[point_cloud] ", what, ": no vertices");
  return mesh;
}

// ---- VRML ---------------------------------------------------------------------------------

namespace {

struct Token {
  std::string_view text;
  int64_t line;
};

// Words, numbers, braces and brackets; commas separate like blanks; '#' comments and quoted
// strings (kept as one token) handled.
std::vector<Token> vrml_tokens(std::string_view s) {
  std::vector<Token> out;
  int64_t line = 1;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '\n') { ++line; ++i; continue; }
    if (is_space(c) || c == ',') { ++i; continue; }
    if (c == '#') {
      while (i < s.size() && s[i] != '\n') ++i;
      continue;
    }
    if (c == '{' || c == '}' || c == '[' || c == ']') {
      out.push_back({s.substr(i, 1), line});
      ++i;
      continue;
    }
    const size_t start = i;
    if (c == '"') {
      ++i;
      while (i < s.size() && s[i] != '"') {
        if (s[i] == '\\') ++i;
        if (i < s.size() && s[i] == '\n') ++line;
        ++i;
      }
      ++i;
    } else {
      while (i < s.size() && !is_space(s[i]) && s[i] != ',' && s[i] != '#' && s[i] != '{' && s[i] != '}' &&
             s[i] != '[' && s[i] != ']')
        ++i;
    }
    out.push_back({s.substr(start, std::min(i, s.size()) - start), line});
  }
  return out;
}

// An affine map p -> A p + b, row-major (A | b).
struct Affine {
  double m[12] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0};
  void apply(const float* p, float* out) const {
    for (int r = 0; r < 3; ++r)
      out[r] = static_cast<float>(m[4 * r] * p[0] + m[4 * r + 1] * p[1] + m[4 * r + 2] * p[2] + m[4 * r + 3]);
  }
  // (this o other)(p) = this(other(p))
  Affine then_inner(const Affine& o) const {
    Affine c;
    for (int r = 0; r < 3; ++r)
      for (int k = 0; k < 4; ++k) {
        double v = k == 3 ? m[4 * r + 3] : 0.0;
        for (int j = 0; j < 3; ++j) v += m[4 * r + j] * o.m[4 * j + k];
        c.m[4 * r + k] = v;
      }
    return c;
  }
  static Affine translation(const double* t) {
    Affine a;
    for (int r = 0; r < 3; ++r) a.m[4 * r + 3] = t[r];
    return a;
  }
  static Affine scaling(const double* s) {
    Affine a;
    for (int r = 0; r < 3; ++r) a.m[5 * r] = s[r];
    return a;
  }
  // a rotation by angle about the axis (x, y, z) (Rodrigues); a zero axis is no rotation
  static Affine rotation(const double* r) {
    Affine a;
    const double n = std::sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]);
    if (n == 0) return a;
    const double x = r[0] / n, y = r[1] / n, z = r[2] / n, c = std::cos(r[3]), s = std::sin(r[3]), t = 1 - c;
    const double rot[9] = {t * x * x + c,     t * x * y - s * z, t * x * z + s * y,
                           t * x * y + s * z, t * y * y + c,     t * y * z - s * x,
                           t * x * z - s * y, t * y * z + s * x, t * z * z + c};
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) a.m[4 * i + j] = rot[3 * i + j];
    return a;
  }
};

const Affine kIdentity;

class VrmlParser {
 public:
  VrmlParser(std::vector<Token> tokens, const std::string& what) : t_(std::move(tokens)), what_(what) {}

  Mesh parse() {
    Mesh mesh;
    // the Transforms around the current token: (the depth of each one's brace, the map to the file's frame)
    std::vector<std::pair<int, Affine>> frames;
    int depth = 0;
    pos_ = 0;
    while (pos_ < t_.size()) {
      const std::string_view tok = t_[pos_].text;
      const bool opens_block = pos_ + 1 < t_.size() && t_[pos_ + 1].text == "{";
      const Affine& frame = frames.empty() ? kIdentity : frames.back().second;
      if (tok == "Transform" && opens_block) {
        const Affine world = frame.then_inner(transform_fields(pos_ + 1));  // before push_back moves frames
        frames.push_back({depth, world});
        ++depth;
        pos_ += 2;
        continue;
      }
      if (tok == "DEF" && pos_ + 3 < t_.size() && t_[pos_ + 2].text == "Coordinate" && t_[pos_ + 3].text == "{") {
        // a Coordinate named outside a face set (e.g. in a line set): a later coord USE takes it
        const std::string name(t_[pos_ + 1].text);
        pos_ += 2;
        bool has_points = false;
        coordinates_[name] = coordinate_node(&has_points);
        continue;
      }
      if (tok == "IndexedFaceSet" && opens_block) {
        ++pos_;
        face_set(mesh, frame);  // leaves pos_ after the set's closing brace
        continue;
      }
      if (tok == "{" || tok == "[") {
        ++depth;
      } else if (tok == "}" || tok == "]") {
        --depth;
        while (!frames.empty() && frames.back().first >= depth) frames.pop_back();
      }
      ++pos_;
    }
    if (mesh.vertices.empty()) throw_error("[point_cloud] ", what_, ": no IndexedFaceSet with points");
    return mesh;
  }

 private:
  // open at a Transform's '{': its map T C R SR S SR^-1 C^-1 (VRML 2.0) from the translation,
  // center, rotation, scale and scaleOrientation fields at its own level (defaults: none).
  Affine transform_fields(size_t open) {
    double translation[3] = {0, 0, 0}, center[3] = {0, 0, 0}, scale[3] = {1, 1, 1};
    double rotation[4] = {0, 0, 1, 0}, orientation[4] = {0, 0, 1, 0};
    int depth = 0;
    for (size_t i = open + 1;; ++i) {
      const std::string_view tok = at(i).text;
      if (tok == "{" || tok == "[") {
        ++depth;
      } else if (tok == "}" || tok == "]") {
        if (depth == 0) break;
        --depth;
      } else if (depth == 0) {
        double* field = tok == "translation" ? translation : tok == "center" ? center : tok == "scale" ? scale
                        : tok == "rotation" ? rotation : tok == "scaleOrientation" ? orientation : nullptr;
        if (field == nullptr) continue;
        const int n = field == rotation || field == orientation ? 4 : 3;
        for (int k = 0; k < n; ++k) field[k] = coordinate(at(i + 1 + k).text, what_, at(i + 1 + k).line);
        i += n;
      }
    }
    const double minus_center[3] = {-center[0], -center[1], -center[2]};
    const double inverse_orientation[4] = {orientation[0], orientation[1], orientation[2], -orientation[3]};
    return Affine::translation(translation)
        .then_inner(Affine::translation(center))
        .then_inner(Affine::rotation(rotation))
        .then_inner(Affine::rotation(orientation))
        .then_inner(Affine::scaling(scale))
        .then_inner(Affine::rotation(inverse_orientation))
        .then_inner(Affine::translation(minus_center));
  }

  const Token& at(size_t i) const {
    if (i >= t_.size()) throw_error("[point_cloud] ", what_, ": file ends inside an IndexedFaceSet");
    return t_[i];
  }
  void expect(const char* text) {
    if (at(pos_).text != text)
      fail_at(what_, at(pos_).line, std::string("expected '") + text + "', got '" + std::string(at(pos_).text) + "'");
    ++pos_;
  }
  // pos_ at an opening '{' or '[': moves past its matching closer.
  void skip_balanced() {
    int depth = 0;
    do {
      const std::string_view s = at(pos_).text;
      if (s == "{" || s == "[") ++depth;
      if (s == "}" || s == "]") --depth;
      ++pos_;
    } while (depth > 0);
  }
  // pos_ at '[': the numbers up to ']', pos_ after it.
  template <typename F>
  void numbers(F&& on_number) {
    expect("[");
    while (at(pos_).text != "]") {
      on_number(at(pos_));
      ++pos_;
    }
    ++pos_;
  }

  // pos_ at "Coordinate": the numbers of its point field (*has_points: the field was there); pos_
  // after the node's closing brace.
  std::vector<float> coordinate_node(bool* has_points) {
    std::vector<float> points;
    expect("Coordinate");
    expect("{");
    while (at(pos_).text != "}") {
      if (at(pos_).text == "point") {
        ++pos_;
        numbers([&](const Token& tok) { points.push_back(coordinate(tok.text, what_, tok.line)); });
        *has_points = true;
      } else if (at(pos_).text == "{" || at(pos_).text == "[") {
        skip_balanced();
      } else {
        ++pos_;
      }
    }
    ++pos_;
    return points;
  }

  // pos_ at the IndexedFaceSet's '{'; its points are mapped by frame into the file's frame.
  void face_set(Mesh& mesh, const Affine& frame) {
    const int64_t start_line = at(pos_).line;
    ++pos_;
    std::vector<float> points;
    std::vector<int64_t> index;
    bool have_coord = false, have_index = false;
    int64_t index_line = start_line;
    while (at(pos_).text != "}") {
      const std::string_view field = at(pos_).text;
      ++pos_;
      if (field == "coord") {
        if (at(pos_).text == "USE") {  // the points of a Coordinate DEF'd earlier
          const Token& name = at(pos_ + 1);
          const auto def = coordinates_.find(std::string(name.text));
          if (def == coordinates_.end())
            fail_at(what_, name.line, "coord USE " + std::string(name.text) + ": no Coordinate DEF " +
                                          std::string(name.text) + " before it");
          points = def->second;
          have_coord = true;
          pos_ += 2;
          continue;
        }
        std::string def_name;
        if (at(pos_).text == "DEF") {
          def_name = std::string(at(pos_ + 1).text);
          pos_ += 2;
        }
        points = coordinate_node(&have_coord);
        if (!def_name.empty()) coordinates_[def_name] = points;
      } else if (field == "coordIndex") {
        index_line = at(pos_).line;
        numbers([&](const Token& tok) {
          int64_t v = 0;
          if (!parse_int(tok.text, v) || v < -1)
            fail_at(what_, tok.line, "expected a vertex index or -1, got '" + std::string(tok.text) + "'");
          index.push_back(v);
        });
        have_index = true;
      } else if (at(pos_).text == "{" || at(pos_).text == "[") {
        skip_balanced();  // another field's node or list value
      } else if (field == "{" || field == "[") {
        --pos_;
        skip_balanced();
      }
    }
    ++pos_;
    if (!have_coord || !have_index)
      fail_at(what_, start_line, "an IndexedFaceSet needs both coord Coordinate { point [...] } and coordIndex [...]");
    if (points.size() % 3 != 0)
      fail_at(what_, start_line, "point holds " + std::to_string(points.size()) + " numbers, not a multiple of 3");
    const int64_t base = mesh.num_vertices(), count = static_cast<int64_t>(points.size() / 3);
    if (base + count > kMaxMeshElements) fail_at(what_, start_line, "more than " + std::to_string(kMaxMeshElements) + " vertices");
    for (size_t k = 0; k < points.size(); k += 3) {
      float p[3];
      frame.apply(points.data() + k, p);
      for (int c = 0; c < 3; ++c) {
        if (!std::isfinite(p[c])) fail_at(what_, start_line, "a point is not finite after its Transforms");
        mesh.vertices.push_back(p[c]);
      }
    }
    std::vector<int64_t> poly;
    for (size_t k = 0; k <= index.size(); ++k) {
      if (k == index.size() || index[k] == -1) {
        if (!poly.empty()) add_polygon(mesh, poly, base, count, what_, index_line);
        poly.clear();
      } else {
        poly.push_back(index[k]);
      }
    }
  }

  std::vector<Token> t_;
  const std::string& what_;
  size_t pos_ = 0;
  std::map<std::string, std::vector<float>> coordinates_;  // DEF'd Coordinate nodes' points
};

}  // namespace

Mesh decode_vrml(std::string_view text, const std::string& what) {
  if (text.substr(0, 10) != "#VRML V2.0")
    throw_error("[point_cloud] ", what, ": not a VRML 2.0 file (expected '#VRML V2.0' at the start)");
  return VrmlParser(vrml_tokens(text), what).parse();
}

// ---- files, sampling ----------------------------------------------------------------------

Mesh read_mesh(const std::string& path, int64_t max_bytes) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext != ".off" && ext != ".ply" && ext != ".xyz" && ext != ".wrl")
    throw_error("[point_cloud] ", path, ": unknown extension '", ext, "' (expected .off, .ply, .xyz or .wrl)");
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && static_cast<int64_t>(size) > max_bytes)
    throw_error("[point_cloud] ", path, ": ", size, " bytes is over the limit of ", max_bytes);
  const std::string bytes = io::read_file(path);
  if (ext == ".off") return decode_off(bytes, path);
  if (ext == ".ply") return decode_ply(bytes, path);
  if (ext == ".xyz") return decode_xyz(bytes, path);
  return decode_vrml(bytes, path);
}

std::vector<float> sample_points(const Mesh& mesh, int64_t n, Rng& rng, const std::string& what) {
  check(n >= 1 && n <= kMaxMeshElements, "[point_cloud] ", what, ": the number of points to sample must be in [1, ",
        kMaxMeshElements, "], got ", n);
  const int64_t nv = mesh.num_vertices();
  check(nv >= 1 && mesh.vertices.size() % 3 == 0 && mesh.triangles.size() % 3 == 0, "[point_cloud] ", what,
        ": the mesh has no vertices (or a ragged vertex or triangle array)");
  for (float v : mesh.vertices) check(std::isfinite(v), "[point_cloud] ", what, ": a vertex coordinate is not finite");
  for (int32_t i : mesh.triangles)
    check(i >= 0 && i < nv, "[point_cloud] ", what, ": triangle vertex index ", i, " is outside [0, ", nv, ")");
  const float* p = mesh.vertices.data();
  // cumulative triangle areas: |(b - a) x (c - a)| / 2
  std::vector<double> cumulative(static_cast<size_t>(mesh.num_triangles()));
  double total = 0;
  for (int64_t t = 0; t < mesh.num_triangles(); ++t) {
    const float* a = p + 3 * mesh.triangles[3 * t];
    const float* b = p + 3 * mesh.triangles[3 * t + 1];
    const float* c = p + 3 * mesh.triangles[3 * t + 2];
    const double u[3] = {double(b[0]) - a[0], double(b[1]) - a[1], double(b[2]) - a[2]};
    const double v[3] = {double(c[0]) - a[0], double(c[1]) - a[1], double(c[2]) - a[2]};
    const double x = u[1] * v[2] - u[2] * v[1], y = u[2] * v[0] - u[0] * v[2], z = u[0] * v[1] - u[1] * v[0];
    total += 0.5 * std::sqrt(x * x + y * y + z * z);
    cumulative[static_cast<size_t>(t)] = total;
  }
  std::vector<float> out;
  out.reserve(static_cast<size_t>(n) * 3);
  if (total > 0 && std::isfinite(total)) {
    for (int64_t s = 0; s < n; ++s) {
      // the triangle whose share of the area holds u; then a uniform point in it
      const double u = static_cast<double>(rng.uniform()) * total;
      const size_t t = std::min<size_t>(std::upper_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin(),
                                        cumulative.size() - 1);
      const double r1 = std::sqrt(static_cast<double>(rng.uniform())), r2 = rng.uniform();
      const double wa = 1 - r1, wb = r1 * (1 - r2), wc = r1 * r2;
      const float* a = p + 3 * mesh.triangles[3 * t];
      const float* b = p + 3 * mesh.triangles[3 * t + 1];
      const float* c = p + 3 * mesh.triangles[3 * t + 2];
      for (int k = 0; k < 3; ++k) out.push_back(static_cast<float>(wa * a[k] + wb * b[k] + wc * c[k]));
    }
    return out;
  }
  // no area: the vertices themselves, each once per pass in a fresh random order
  std::vector<int64_t> order(static_cast<size_t>(nv));
  for (int64_t s = 0; s < n; ++s) {
    const int64_t k = s % nv;
    if (k == 0) {
      for (int64_t i = 0; i < nv; ++i) order[static_cast<size_t>(i)] = i;
      for (int64_t i = nv - 1; i > 0; --i)
        std::swap(order[static_cast<size_t>(i)], order[rng.below(static_cast<uint32_t>(i + 1))]);
    }
    const float* v = p + 3 * order[static_cast<size_t>(k)];
    out.insert(out.end(), v, v + 3);
  }
  return out;
}

void normalize_to_unit_sphere(std::vector<float>& xyz) {
  const size_t n = xyz.size() / 3;
  if (n == 0) return;
  double mean[3] = {0, 0, 0};
  for (size_t i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) mean[k] += xyz[3 * i + k];
  for (double& m : mean) m /= static_cast<double>(n);
  double radius = 0;
  for (size_t i = 0; i < n; ++i) {
    double r2 = 0;
    for (int k = 0; k < 3; ++k) r2 += (xyz[3 * i + k] - mean[k]) * (xyz[3 * i + k] - mean[k]);
    radius = std::max(radius, std::sqrt(r2));
  }
  const double scale = radius > 0 ? 1.0 / radius : 0.0;
  for (size_t i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) xyz[3 * i + k] = static_cast<float>((xyz[3 * i + k] - mean[k]) * scale);
}

}  // namespace perceiver::data
