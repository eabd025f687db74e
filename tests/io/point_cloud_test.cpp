// Point-cloud and mesh readers on the committed fixtures (tests/data/point_cloud, written by
// tools/make_point_cloud_fixtures.py): the same cube from OFF, PLY (ascii, binary little and big
// endian, with extra properties and elements to read past) and VRML (two IndexedFaceSets) has the
// same surface; XYZ point sets; malformed files and inline edge cases are errors naming the file
// and line; surface sampling covers the faces in proportion to their area.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "io_test_util.h"
#include "perceiver/data/point_cloud.h"

namespace perceiver {
namespace {

using testing::throws_error;

std::string fixture(const std::string& name) {
  return (std::filesystem::path(PERCEIVER_SOURCE_DIR) / "tests/data/point_cloud" / name).string();
}

double surface_area(const data::Mesh& m) {
  double total = 0;
  for (int64_t t = 0; t < m.num_triangles(); ++t) {
    const float* a = &m.vertices[3 * m.triangles[3 * t]];
    const float* b = &m.vertices[3 * m.triangles[3 * t + 1]];
    const float* c = &m.vertices[3 * m.triangles[3 * t + 2]];
    const double u[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]}, v[3] = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
    const double x = u[1] * v[2] - u[2] * v[1], y = u[2] * v[0] - u[0] * v[2], z = u[0] * v[1] - u[1] * v[0];
    total += 0.5 * std::sqrt(x * x + y * y + z * z);
  }
  return total;
}

class CubeFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(CubeFixture, ReadsTheCube) {
  const data::Mesh m = data::read_mesh(fixture(GetParam()));
  const bool vrml = std::string(GetParam()).find(".wrl") != std::string::npos;
  EXPECT_EQ(m.num_vertices(), vrml ? 16 : 8);  // the VRML file's two sets each carry their points
  EXPECT_EQ(m.num_triangles(), 12);           // six quads, fan-triangulated
  EXPECT_NEAR(surface_area(m), 24.0, 1e-9);   // side 2
  for (float v : m.vertices) EXPECT_TRUE(v == 0.0f || v == 2.0f) << v;
  // vertex 5 of the file is (2, 0, 2): x, y, z in order, whatever the format
  EXPECT_EQ(std::vector<float>(m.vertices.begin() + 15, m.vertices.begin() + 18), (std::vector<float>{2, 0, 2}));
  for (int32_t i : m.triangles) EXPECT_TRUE(i >= 0 && i < m.num_vertices());
}

INSTANTIATE_TEST_SUITE_P(Formats, CubeFixture,
                         ::testing::Values("cube.off", "cube_ascii.ply", "cube_binary_le.ply", "cube_binary_be.ply",
                                           "cube.wrl"));

TEST(PointCloud, FormatsGiveTheSameTriangles) {
  const data::Mesh off = data::read_mesh(fixture("cube.off"));
  for (const char* name : {"cube_ascii.ply", "cube_binary_le.ply", "cube_binary_be.ply"}) {
    const data::Mesh m = data::read_mesh(fixture(name));
    EXPECT_EQ(m.vertices, off.vertices) << name;
    EXPECT_EQ(m.triangles, off.triangles) << name;
  }
  // the quad (0, 2, 3, 1) becomes (0, 2, 3) and (0, 3, 1)
  EXPECT_EQ(std::vector<int32_t>(off.triangles.begin(), off.triangles.begin() + 6),
            (std::vector<int32_t>{0, 2, 3, 0, 3, 1}));
}

TEST(PointCloud, XyzPointsWithCommentsCommasAndExtraColumns) {
  const data::Mesh m = data::read_mesh(fixture("points.xyz"));
  EXPECT_EQ(m.vertices, (std::vector<float>{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}));
  EXPECT_TRUE(m.triangles.empty());
}

TEST(PointCloud, ModelNetHeaderAndOffVariants) {
  // ModelNet's glued first line, COFF colours after the coordinates, a face's trailing colour
  const data::Mesh m = data::decode_off("OFF3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", "m.off");
  EXPECT_EQ(m.num_vertices(), 3);
  EXPECT_EQ(m.triangles, (std::vector<int32_t>{0, 1, 2}));
  const data::Mesh c = data::decode_off("COFF\n3 1 0\n0 0 0 255 0 0 255\n1 0 0 0 255 0 255\n0 1 0 0 0 255 255\n"
                                        "3 2 1 0 0.5 0.5 0.5\n", "c.off");
  EXPECT_EQ(c.vertices, (std::vector<float>{0, 0, 0, 1, 0, 0, 0, 1, 0}));
  EXPECT_EQ(c.triangles, (std::vector<int32_t>{2, 1, 0}));
}

TEST(PointCloud, PlyWithoutFacesIsAPointSet) {
  const data::Mesh m = data::decode_ply("ply\nformat ascii 1.0\nelement vertex 2\nproperty double z\nproperty float x\n"
                                        "property float y\nend_header\n3 1 2\n6 4 5\n", "p.ply");
  EXPECT_EQ(m.vertices, (std::vector<float>{1, 2, 3, 4, 5, 6}));  // x, y, z put back in order
  EXPECT_TRUE(m.triangles.empty());
}

TEST(PointCloud, MalformedFixturesNameTheFileAndTheProblem) {
  EXPECT_TRUE(throws_error([] { data::read_mesh(fixture("bad_index.off")); },
                           {"bad_index.off:6", "vertex index 3 is outside [0, 3)"}));
  EXPECT_TRUE(throws_error([] { data::read_mesh(fixture("truncated.off")); }, {"truncated.off"}));
  EXPECT_TRUE(throws_error([] { data::read_mesh(fixture("nan.xyz")); }, {"nan.xyz:2", "not a finite"}));
  EXPECT_TRUE(throws_error([] { data::read_mesh(fixture("truncated_binary.ply")); },
                           {"truncated_binary.ply", "file ends inside face"}));
  EXPECT_TRUE(throws_error([] { data::read_mesh(fixture("huge_count.ply")); },
                           {"huge_count.ply", "60000000 vertex elements cannot fit"}));
}

TEST(PointCloud, InlineErrors) {
  auto off = [](const char* text) { return [text] { data::decode_off(text, "x.off"); }; };
  EXPECT_TRUE(throws_error(off(""), {"x.off", "empty file"}));
  EXPECT_TRUE(throws_error(off("PLY\n"), {"x.off:1", "expected the OFF keyword"}));
  EXPECT_TRUE(throws_error(off("4OFF\n1 0 0\n"), {"expected the OFF keyword"}));
  EXPECT_TRUE(throws_error(off("OFF\n-1 0 0\n"), {"x.off:2", "vertex count"}));
  EXPECT_TRUE(throws_error(off("OFF\n1 1 0\n0 0 0\n2 0 0\n"), {"x.off:4", "at least 3 vertices"}));
  EXPECT_TRUE(throws_error(off("OFF\n1 0 0\n0 0 # no z\n"), {"x.off:3", "a vertex needs x y z"}));
  EXPECT_TRUE(throws_error(off("OFF\n1 0 0\n0 zero 0\n"), {"x.off:3", "expected a number, got 'zero'"}));
  EXPECT_TRUE(throws_error(off("OFF\n0 0 0\n"), {"x.off", "no vertices"}));
  EXPECT_TRUE(throws_error(off("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n5 0 1 2\n"), {"x.off:6", "expected a face"}));
  EXPECT_TRUE(throws_error(off("OFF\n1 0 0\n1e39 0 0\n"), {"not a finite float32"}));

  auto ply = [](std::string text) { return [text] { data::decode_ply(text, "x.ply"); }; };
  const std::string head = "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n";
  EXPECT_TRUE(throws_error(ply("plx\n"), {"x.ply", "not a PLY file"}));
  EXPECT_TRUE(throws_error(ply(head), {"no end_header"}));
  EXPECT_TRUE(throws_error(ply("ply\nelement vertex 1\nproperty float x\nend_header\n"), {"no format line"}));
  EXPECT_TRUE(throws_error(ply("ply\nformat binary_middle_endian 1.0\nend_header\n"), {"x.ply:2", "format"}));
  EXPECT_TRUE(throws_error(ply("ply\nformat ascii 1.0\nproperty float x\nend_header\n"), {"before any element"}));
  EXPECT_TRUE(throws_error(ply("ply\nformat ascii 1.0\nelement vertex 1\nproperty half x\nend_header\n"),
                           {"x.ply:4", "property TYPE NAME"}));
  EXPECT_TRUE(throws_error(ply("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nend_header\n0 0\n"),
                           {"x.ply:3", "scalar property z"}));
  EXPECT_TRUE(throws_error(ply("ply\nformat ascii 1.0\nelement face 0\nproperty list uchar int vertex_indices\nend_header\n"),
                           {"no 'element vertex'"}));
  EXPECT_TRUE(throws_error(ply(head + "element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n"),
                           {"x.ply:13", "vertex index 7.000000 is not an integer in [0, 3)"}));
  EXPECT_TRUE(throws_error(ply(head + "element face 1\nproperty list float int vertex_indices\nend_header\n"),
                           {"x.ply:8", "property list COUNT_TYPE"}));
  EXPECT_TRUE(throws_error(ply(head + "end_header\n0.0 0 0\n1 0\n2.0 2.0 2.0\n"), {"x.ply:9", "too few values for vertex 1"}));
  EXPECT_TRUE(throws_error(ply(head + "end_header\n0 0 0\n1 0 0\n0 nan 0\n"), {"vertex 2 has a non-finite"}));
  EXPECT_TRUE(throws_error(ply(head + "gibberish\nend_header\n"), {"x.ply:7", "unknown header line"}));

  auto xyz = [](const char* text) { return [text] { data::decode_xyz(text, "x.xyz"); }; };
  EXPECT_TRUE(throws_error(xyz("# only a comment\n\n"), {"x.xyz", "no points"}));
  EXPECT_TRUE(throws_error(xyz("1 2 3\n4 5\n"), {"x.xyz:2", "a point needs x y z"}));

  auto wrl = [](std::string text) { return [text] { data::decode_vrml(text, "x.wrl"); }; };
  const std::string v2 = "#VRML V2.0 utf8\n";
  EXPECT_TRUE(throws_error(wrl("#VRML V1.0 ascii\n"), {"x.wrl", "not a VRML 2.0 file"}));
  EXPECT_TRUE(throws_error(wrl(v2 + "Shape { }\n"), {"no IndexedFaceSet with points"}));
  EXPECT_NO_THROW(wrl(v2 + "Shape { geometry IndexedFaceSet { coordIndex [0,1,2,-1]\n"
                           "coord Coordinate { point [0 0 0, 1 0 0, 0 1 0] } } }")());
  EXPECT_TRUE(throws_error(wrl(v2 + "Shape { geometry IndexedFaceSet { coordIndex [0,1,3,-1]\n"
                                     "coord Coordinate { point [0 0 0, 1 0 0, 0 1 0] } } }"),
                           {"x.wrl:2", "vertex index 3 is outside [0, 3)"}));
  EXPECT_TRUE(throws_error(wrl(v2 + "Shape { geometry IndexedFaceSet { coordIndex [0,1,2,-1]\n"
                                     "coord Coordinate { point [0 0 0, 1 0 0, 0 1] } } }"),
                           {"not a multiple of 3"}));
  EXPECT_TRUE(throws_error(wrl(v2 + "Shape { geometry IndexedFaceSet { coordIndex [0,1,2,-1] }"),
                           {"needs both coord"}));
  EXPECT_TRUE(throws_error(wrl(v2 + "Shape { geometry IndexedFaceSet { coordIndex [0,1,2"),
                           {"file ends inside an IndexedFaceSet"}));
  EXPECT_TRUE(throws_error(wrl(v2 + "Shape { geometry IndexedFaceSet { coord USE C coordIndex [0,1,2] } }"),
                           {"x.wrl:2", "coord USE C: no Coordinate DEF C before it"}));
  // a DEF'd Coordinate serves a second face set through USE
  const data::Mesh shared = data::decode_vrml(
      v2 + "Shape { geometry IndexedFaceSet { coord DEF C Coordinate { point [0 0 0, 1 0 0, 0 1 0] } coordIndex [0,1,2] } }\n"
           "Shape { geometry IndexedFaceSet { coord USE C coordIndex [2,1,0] } }",
      "x.wrl");
  EXPECT_EQ(shared.num_vertices(), 6);
  EXPECT_EQ(shared.triangles, (std::vector<int32_t>{0, 1, 2, 5, 4, 3}));
  // ... also when it was DEF'd in another kind of node (a line set, whose lines are not a surface)
  const data::Mesh from_lines = data::decode_vrml(
      v2 + "Shape { geometry IndexedLineSet { coord DEF L Coordinate { point [0 0 0, 1 0 0, 0 1 0] } coordIndex [0,1,-1] } }\n"
           "Shape { geometry IndexedFaceSet { coord USE L coordIndex [0,1,2] } }",
      "x.wrl");
  EXPECT_EQ(from_lines.vertices, (std::vector<float>{0, 0, 0, 1, 0, 0, 0, 1, 0}));
  EXPECT_EQ(from_lines.triangles, (std::vector<int32_t>{0, 1, 2}));

  EXPECT_TRUE(throws_error([] { data::read_mesh("part.stl"); }, {"part.stl", "expected .off, .ply, .xyz or .wrl"}));
  EXPECT_TRUE(throws_error([] { data::read_mesh("/nonexistent/part.off"); }, {"/nonexistent/part.off"}));
  EXPECT_TRUE(throws_error([] { data::read_mesh(fixture("cube.off"), 64); }, {"cube.off", "over the limit of 64"}));
}

TEST(PointCloud, VrmlTransformsMapPointsIntoTheFilesFrame) {
  // the cube fixture inside "Transform { translation 1 0 0 children [...] }"
  const data::Mesh cube = data::read_mesh(fixture("cube.wrl")), moved = data::read_mesh(fixture("transform.wrl"));
  ASSERT_EQ(moved.vertices.size(), cube.vertices.size());
  for (size_t i = 0; i < cube.vertices.size(); ++i)
    EXPECT_EQ(moved.vertices[i], cube.vertices[i] + (i % 3 == 0 ? 1.0f : 0.0f)) << i;
  EXPECT_EQ(moved.triangles, cube.triangles);
  // nested: translate by (1, 0, 0), then rotate 90 degrees about z; a sibling after the inner
  // Transform's end is only rotated; scale 2 about the centre (1, 1, 1); a translation field
  // inside a child does not belong to the outer Transform
  const std::string shape = "Shape { geometry IndexedFaceSet { coord Coordinate { point [0 0 0, 1 0 0, 0 1 0] } "
                            "coordIndex [0, 1, 2] } }\n";
  const data::Mesh m = data::decode_vrml(
      "#VRML V2.0 utf8\nTransform { rotation 0 0 1 1.5707963267948966 children [\n"
      "  Transform { children [ " + shape + " ] translation 1 0 0 }\n  " + shape + "] }\n"
      "Transform { center 1 1 1 scale 2 2 2 children [ Group { children [ " + shape + " ] } ] }\n" + shape,
      "t.wrl");
  const std::vector<float> want = {0, 1, 0, 0, 2, 0, -1, 1, 0,   // translated, then rotated
                                   0, 0, 0, 0, 1, 0, -1, 0, 0,   // rotated
                                   -1, -1, -1, 1, -1, -1, -1, 1, -1,  // 2 (p - c) + c
                                   0, 0, 0, 1, 0, 0, 0, 1, 0};   // outside every Transform
  ASSERT_EQ(m.vertices.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(m.vertices[i], want[i], 1e-6) << i;
  EXPECT_TRUE(throws_error([] { data::decode_vrml("#VRML V2.0 utf8\nTransform { scale 2 x 1 children [] }", "t.wrl"); },
                           {"t.wrl:2", "expected a number, got 'x'"}));
}

TEST(PointCloud, VrmlReadsPastOtherFieldsAndNodes) {
  // normals, texture coordinates (whose 'point' is not the shape's), colours, DEF names
  const data::Mesh m = data::decode_vrml(
      "#VRML V2.0 utf8\nShape { appearance Appearance { material Material { diffuseColor 1 0 0 } }\n"
      "geometry IndexedFaceSet { solid FALSE normal Normal { vector [0 0 1, 0 0 1] } normalIndex [0, 1, 0, -1]\n"
      "texCoord TextureCoordinate { point [5 5, 6 6, 7 7] }\n"
      "coord DEF C1 Coordinate { point [0 0 0, 1 0 0, 1 1 0, 0 1 0] }\n"
      "coordIndex [0, 1, 2, 3] } }\n",
      "x.wrl");
  EXPECT_EQ(m.vertices, (std::vector<float>{0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0}));
  EXPECT_EQ(m.triangles, (std::vector<int32_t>{0, 1, 2, 0, 2, 3}));  // the last polygon needs no -1
}

TEST(PointCloud, SurfaceSamplesLieOnTheFacesInProportionToArea) {
  // a unit square (area 1) in z = 0 and a 2 x 2 square (area 4) in z = 5
  data::Mesh m;
  m.vertices = {0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 5, 2, 0, 5, 2, 2, 5, 0, 2, 5};
  m.triangles = {0, 1, 2, 0, 2, 3, 4, 5, 6, 4, 6, 7};
  Rng rng(7);
  const int64_t n = 20000;
  const std::vector<float> p = data::sample_points(m, n, rng, "two squares");
  ASSERT_EQ(p.size(), static_cast<size_t>(3 * n));
  int64_t upper = 0;
  double mean_x_upper = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float x = p[3 * i], y = p[3 * i + 1], z = p[3 * i + 2];
    ASSERT_TRUE(z == 0.0f || z == 5.0f) << z;
    const float side = z == 0.0f ? 1.0f : 2.0f;
    ASSERT_TRUE(x >= 0 && x <= side && y >= 0 && y <= side) << x << " " << y << " " << z;
    if (z == 5.0f) {
      ++upper;
      mean_x_upper += x;
    }
  }
  // 4/5 of the area; binomial standard deviation sqrt(n 0.8 0.2) = 57 samples: 5 sigma
  EXPECT_NEAR(static_cast<double>(upper), 0.8 * n, 5 * std::sqrt(n * 0.16));
  EXPECT_NEAR(mean_x_upper / upper, 1.0, 0.05);  // uniform over [0, 2]
  // the same seed gives the same points
  Rng again(7);
  EXPECT_EQ(data::sample_points(m, n, again, "two squares"), p);
}

TEST(PointCloud, PointSetsAreSampledFromTheirVertices) {
  data::Mesh m;
  m.vertices = {0, 0, 0, 1, 0, 0, 2, 0, 0};
  Rng rng(3);
  const std::vector<float> p = data::sample_points(m, 7, rng, "three points");
  ASSERT_EQ(p.size(), 21u);
  // every pass of 3 holds each vertex once
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<float> xs = {p[9 * pass], p[9 * pass + 3], p[9 * pass + 6]};
    std::sort(xs.begin(), xs.end());
    EXPECT_EQ(xs, (std::vector<float>{0, 1, 2}));
  }
  data::Mesh bad = m;
  bad.triangles = {0, 1, 3};
  EXPECT_TRUE(throws_error([&] { data::sample_points(bad, 4, rng, "bad"); }, {"bad", "index 3 is outside [0, 3)"}));
  EXPECT_TRUE(throws_error([&] { data::sample_points(m, 0, rng, "m"); }, {"must be in [1, "}));
  EXPECT_TRUE(throws_error([&] { data::sample_points(data::Mesh{}, 4, rng, "empty"); }, {"empty", "no vertices"}));
}

TEST(PointCloud, NormalizeToUnitSphere) {
  std::vector<float> p = {1, 1, 1, 3, 1, 1, 2, 4, 1};  // mean (2, 2, 1)
  data::normalize_to_unit_sphere(p);
  double max_r = 0, mean[3] = {0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    max_r = std::max(max_r, std::sqrt(double(p[3 * i]) * p[3 * i] + double(p[3 * i + 1]) * p[3 * i + 1] +
                                      double(p[3 * i + 2]) * p[3 * i + 2]));
    for (int k = 0; k < 3; ++k) mean[k] += p[3 * i + k] / 3.0;
  }
  EXPECT_NEAR(max_r, 1.0, 1e-6);
  for (double m : mean) EXPECT_NEAR(m, 0.0, 1e-6);
  std::vector<float> same = {4, 4, 4, 4, 4, 4};
  data::normalize_to_unit_sphere(same);
  EXPECT_EQ(same, std::vector<float>(6, 0.0f));
}

}  // namespace
}  // namespace perceiver
