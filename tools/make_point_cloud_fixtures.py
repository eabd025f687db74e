#!/usr/bin/env python3
"""Writes tests/data/point_cloud: one cube (side 2, centred at (1, 1, 1)) in every mesh format the
readers take (OFF; PLY ascii, binary little and big endian with extra properties and an extra
element to read past; VRML 2.0 in KiCad's flat Shape layout, split over two IndexedFaceSets, and
the same inside a Transform), an XYZ point set, and malformed files. Standard library only: /usr/bin/python3 tools/make_point_cloud_fixtures.py
"""
import os
import struct
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "point_cloud")

V = [(x, y, z) for z in (0.0, 2.0) for y in (0.0, 2.0) for x in (0.0, 2.0)]  # index = x/2 + y + 2z
# six quads, counter-clockwise seen from outside
QUADS = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]


def write(name, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(OUT, name), mode) as f:
        f.write(data)


def off():
    lines = ["OFF", "# a cube", f"{len(V)} {len(QUADS)} 0"]
    lines += [f"{x:g} {y:g} {z:g}" for x, y, z in V]
    lines += [f"4 {a} {b} {c} {d}" for a, b, c, d in QUADS]
    return "\n".join(lines) + "\n"


def ply_header(fmt):
    return "\n".join([
        "ply", f"format {fmt} 1.0", "comment a cube", "element vertex 8", "property float x",
        "property float y", "property float z", "property double confidence", "element face 6",
        "property list uchar int vertex_indices", "property uchar flags", "element edge 1",
        "property int vertex1", "property int vertex2", "end_header"]) + "\n"


def ply_ascii():
    body = [f"{x:g} {y:g} {z:g} 0.5" for x, y, z in V]
    body += ["4 " + " ".join(map(str, q)) + " 7" for q in QUADS]
    body += ["0 1"]
    return ply_header("ascii") + "\n".join(body) + "\n"


def ply_binary(endian):
    e = "<" if endian == "little" else ">"
    out = ply_header(f"binary_{endian}_endian").encode()
    for x, y, z in V:
        out += struct.pack(e + "fffd", x, y, z, 0.5)
    for q in QUADS:
        out += struct.pack(e + "B4iB", 4, *q, 7)
    out += struct.pack(e + "ii", 0, 1)
    return out


def vrml():
    def shape(points, faces):
        pts = ",".join(f"{x:g} {y:g} {z:g}" for x, y, z in points)
        idx = ",".join(",".join(map(str, f)) + ",-1" for f in faces)
        return ("Shape { appearance Appearance {material USE PIN-01 }\n"
                "geometry IndexedFaceSet\n{ creaseAngle 0.50 coordIndex\n"
                f"[{idx}]\n"
                "coord Coordinate { point [" + pts + "]\n}}}\n")
    # two sets of the KiCad exporter's shape: the first three quads, then the last three (own points)
    used = sorted({i for q in QUADS[3:] for i in q})
    remap = {i: k for k, i in enumerate(used)}
    text = "#VRML V2.0 utf8\n#created by a test fixture script\n"
    text += "Shape { appearance Appearance {material DEF PIN-01 Material {\ndiffuseColor 0.8 0.8 0.8\n}}}\n"
    text += shape(V, QUADS[:3])
    text += shape([V[i] for i in used], [tuple(remap[i] for i in q) for q in QUADS[3:]])
    return text


def main():
    os.makedirs(OUT, exist_ok=True)
    write("cube.off", off())
    write("cube_ascii.ply", ply_ascii())
    write("cube_binary_le.ply", ply_binary("little"))
    write("cube_binary_be.ply", ply_binary("big"))
    write("cube.wrl", vrml())
    # the cube inside a Transform that moves it by 1 along x
    write("transform.wrl", "#VRML V2.0 utf8\nTransform { translation 1 0 0 children [\n" + vrml().split("\n", 1)[1] + "] }\n")
    write("points.xyz", "# x y z nx ny nz\n0 0 0 0 0 1\n1,0,0,0,0,1\n\n0 1 0 0 0 1  # a comment\n0\t0\t1\t1 0 0\n")
    # malformed files: each must give a clear error
    write("bad_index.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 3\n")
    write("truncated.off", "OFF\n8 6 0\n0 0 0\n2 0 0\n")
    write("nan.xyz", "0 0 0\n1 nan 0\n")
    write("truncated_binary.ply", ply_binary("little")[:-40])
    write("huge_count.ply", "ply\nformat ascii 1.0\nelement vertex 60000000\nproperty float x\nproperty float y\n"
          "property float z\nend_header\n0 0 0\n")
    print("wrote", OUT)


if __name__ == "__main__":
    sys.exit(main())
