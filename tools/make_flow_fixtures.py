#!/usr/bin/env python3
"""Writes tests/data/flow/: tiny optical-flow fixtures for the C++ tests, with the standard
library only (PNG and .flo written by hand):

  assets/backgrounds/  texture.png (40 x 48 RGB), grey.png (30 x 30 grey)
  assets/sprites/      disc.png (24 x 24 RGBA, soft-edged disc), bar.png (12 x 20 RGBA, opaque
                       bar inside a transparent border)
  pairs/               FlyingChairs layout: a_img1.png, a_img2.png, a_flow.flo (20 x 24, the
                       texture moved by the integer flow (2, -1), exact everywhere) and b_* (the
                       same texture moved by (-1, 3), with the top-left 4 x 4 block unknown, 1e10)
  bad/missing_flow/    x_img1.png, x_img2.png only
  bad/truncated_flo/   x_img1.png, x_img2.png, x_flow.flo cut inside its data
  bad/size_mismatch/   x_img1.png, x_img2.png (20 x 24) and an 8 x 8 x_flow.flo

Run: python3 tools/make_flow_fixtures.py
"""
import math
import pathlib
import shutil
import struct
import zlib

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "flow"


def png(path, pixels, channels):
    """pixels: rows of flat channel values (0..255); colour type 0 (grey), 2 (RGB) or 6 (RGBA)."""
    h, w = len(pixels), len(pixels[0]) // channels
    ctype = {1: 0, 3: 2, 4: 6}[channels]

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(row) for row in pixels)
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def flo(path, flow, truncate=None):
    """flow: rows of (u, v) tuples."""
    h, w = len(flow), len(flow[0])
    data = struct.pack("<fii", 202021.25, w, h) + b"".join(struct.pack("<ff", u, v) for row in flow for u, v in row)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[:truncate] if truncate else data)


def texture(x, y, c):
    """A smooth, non-periodic colour texture (so that a shift is visible everywhere)."""
    v = 128 + 60 * math.sin(0.7 * x + 0.3 * y + c) + 50 * math.cos(0.23 * x * (c + 1) - 0.41 * y) + 15 * math.sin(0.05 * x * y)
    return max(0, min(255, int(round(v))))


def texture_rows(h, w, ox=0, oy=0):
    return [[texture(x + ox, y + oy, c) for x in range(w) for c in range(3)] for y in range(h)]


def moved_pair(name, folder, h, w, du, dv, unknown_block=0):
    # frame 2 at p + (du, dv) shows what frame 1 shows at p: frame2(x, y) = T(x - du, y - dv)
    png(folder / f"{name}_img1.png", texture_rows(h, w), 3)
    png(folder / f"{name}_img2.png", texture_rows(h, w, -du, -dv), 3)
    flow = [[(1e10, 1e10) if x < unknown_block and y < unknown_block else (float(du), float(dv)) for x in range(w)]
            for y in range(h)]
    flo(folder / f"{name}_flow.flo", flow)


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    a = OUT / "assets"
    png(a / "backgrounds" / "texture.png", texture_rows(40, 48), 3)
    png(a / "backgrounds" / "grey.png", [[(x * 7 + y * 5) % 256 for x in range(30)] for y in range(30)], 1)
    disc = []
    for y in range(24):
        row = []
        for x in range(24):
            r = math.hypot(x - 11.5, y - 11.5)
            alpha = max(0.0, min(1.0, 10.5 - r))  # a one-pixel soft edge
            row += [220, 40 + 8 * y, 30 + 9 * x, int(round(255 * alpha))]
        disc.append(row)
    png(a / "sprites" / "disc.png", disc, 4)
    bar = [[v for x in range(20) for v in ((20, 200, 60, 255) if 2 <= x < 18 and 3 <= y < 9 else (0, 0, 0, 0))]
           for y in range(12)]
    png(a / "sprites" / "bar.png", bar, 4)

    p = OUT / "pairs"
    moved_pair("a", p, 20, 24, 2, -1)
    moved_pair("b", p, 20, 24, -1, 3, unknown_block=4)

    b = OUT / "bad"
    png(b / "missing_flow" / "x_img1.png", texture_rows(20, 24), 3)
    png(b / "missing_flow" / "x_img2.png", texture_rows(20, 24), 3)
    moved_pair("x", b / "truncated_flo", 20, 24, 1, 1)
    flo(b / "truncated_flo" / "x_flow.flo", [[(1.0, 1.0)] * 24] * 20, truncate=12 + 8 * 100 + 3)
    moved_pair("x", b / "size_mismatch", 20, 24, 1, 1)
    flo(b / "size_mismatch" / "x_flow.flo", [[(1.0, 1.0)] * 8] * 8)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
