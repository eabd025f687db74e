// Point clouds and meshes for point-cloud classification (the original Perceiver's ModelNet40
// setting): OFF, PLY (ascii, binary little and big endian), XYZ text, and VRML 2.0
// IndexedFaceSets (KiCad's 3-D part library). Polygons are fan-triangulated; meshes become point
// clouds by area-weighted surface sampling. Every count and index is checked against the file
// before anything is allocated from it; errors read "[point_cloud] <file>: ..." and name the line
// (text) or the element (binary PLY).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "perceiver/core/random.h"

namespace perceiver::data {

struct Mesh {
  std::vector<float> vertices;     // V x 3 (x, y, z)
  std::vector<int32_t> triangles;  // T x 3 vertex indices; empty for a bare point set
  int64_t num_vertices() const { return static_cast<int64_t>(vertices.size() / 3); }
  int64_t num_triangles() const { return static_cast<int64_t>(triangles.size() / 3); }
};

// Limits against absurd headers: at most this many vertices and faces per file.
constexpr int64_t kMaxMeshElements = int64_t(1) << 26;

// OFF (also COFF / NOFF / CNOFF: colours and normals after the coordinates are skipped, as is
// anything after a face's indices), including ModelNet's "OFF<V> <F> <E>" first line.
Mesh decode_off(std::string_view text, const std::string& what);
// PLY 1.0: "vertex" with float/double/integer x, y, z, and optionally "face" with a list property
// vertex_indices (or vertex_index); other elements and properties are read past.
Mesh decode_ply(std::string_view bytes, const std::string& what);
// XYZ: one point per line, x y z separated by spaces, tabs or commas (further columns such as
// normals or colours ignored); '#' starts a comment. No faces.
Mesh decode_xyz(std::string_view text, const std::string& what);
// VRML 2.0 (#VRML V2.0 utf8): every IndexedFaceSet's coord Coordinate { point [...] } and
// coordIndex [...] (polygons split at -1), merged into one mesh in the file's frame: nested
// Transform nodes apply (translation, rotation, scale, scaleOrientation, center), and coord USE
// takes the points of a Coordinate DEF'd before. Every child of a Switch or LOD is taken, and a
// USE'd node other than a Coordinate is not drawn again (KiCad's exporter writes flat Shape
// blocks; 3 of its 6,227 models use these nodes).
Mesh decode_vrml(std::string_view text, const std::string& what);

// Reads a file by its extension (.off, .ply, .xyz, .wrl; case-insensitive); files over
// max_bytes are refused before they are read.
Mesh read_mesh(const std::string& path, int64_t max_bytes = int64_t(1) << 30);

// n points (n x 3): on the surface when the mesh has triangles of positive total area (a triangle
// chosen with probability proportional to its area, then a uniform point in it), otherwise drawn
// from the vertices (each once in a random order while n <= V, then repeats). Error for a mesh
// without vertices or with non-finite coordinates.
std::vector<float> sample_points(const Mesh& mesh, int64_t n, Rng& rng, const std::string& what);

// Centres the points on their mean and scales them so the farthest lies at distance 1 (a set of
// identical points becomes all zeros). xyz is n x 3.
void normalize_to_unit_sphere(std::vector<float>& xyz);

}  // namespace perceiver::data
