#!/usr/bin/env python3
"""Writes tests/data/images/: small PNG and JPEG files of every kind the decoders must handle, and
pillow_rgb.safetensors with what Pillow's Image.open(f).convert("RGB") gives for each (uint8,
H x W x 3), the reference the C++ decoders (src/data/image_codec.cpp) are tested against.

Run in a virtual environment with Pillow, NumPy and safetensors from PyPI (reference tooling only;
perceiver.cpp never uses Python):
    python3 -m venv /tmp/imgref && /tmp/imgref/bin/pip install pillow numpy safetensors
    /tmp/imgref/bin/python tools/make_image_fixtures.py
"""
import io
import json
import pathlib
import struct
import zlib

import numpy as np
from PIL import Image, features
from safetensors.numpy import save_file

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "images"
H, W = 13, 17  # odd sizes: chroma subsampling edges, partial MCUs, interlace passes


def gradient_rgb():
    y, x = np.mgrid[0:H, 0:W]
    r = (x * 15 + y * 3) % 256
    g = (255 - y * 19) % 256
    b = ((x * y) * 7 + 40) % 256
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def adam7_png(pixels):
    """An interlaced (Adam7) 8-bit RGB PNG, written by hand: filter type 0 on every row."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    h, w, _ = pixels.shape
    raw = b""
    for y0, x0, dy, dx in [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1)]:
        sub = pixels[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        for row in sub:
            raw += b"\x00" + row.tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rgb = Image.fromarray(gradient_rgb(), "RGB")
    grey = rgb.convert("L")
    alpha = Image.fromarray(((np.arange(H * W).reshape(H, W) * 11) % 256).astype(np.uint8), "L")
    files = {}

    def save(name, image, **kw):
        buf = io.BytesIO()
        image.save(buf, **kw)
        files[name] = buf.getvalue()

    save("rgb.png", rgb, format="PNG")
    files["rgb_interlaced.png"] = adam7_png(gradient_rgb())  # Pillow cannot write Adam7
    save("grey.png", grey, format="PNG")
    save("grey_4bit.png", grey.point(lambda v: v & 0xF0), format="PNG", bits=4)
    save("bilevel.png", grey.convert("1"), format="PNG")
    la = Image.merge("LA", (grey, alpha))
    save("grey_alpha.png", la, format="PNG")
    rgba = Image.merge("RGBA", (*rgb.split(), alpha))
    save("rgba.png", rgba, format="PNG")
    pal = rgb.quantize(colors=23)
    save("palette.png", pal, format="PNG")
    save("palette_trns.png", pal, format="PNG", transparency=5)
    save("rgb_444.jpg", rgb, format="JPEG", quality=90, subsampling=0)
    save("rgb_420.jpg", rgb, format="JPEG", quality=75, subsampling=2)
    save("rgb_422.jpg", rgb, format="JPEG", quality=80, subsampling=1)
    save("progressive.jpg", rgb, format="JPEG", quality=85, progressive=True)
    save("grey.jpg", grey, format="JPEG", quality=90)
    save("cmyk.jpg", rgb.convert("CMYK"), format="JPEG", quality=95)

    tensors, index = {}, {}
    for name, data in sorted(files.items()):
        (OUT / name).write_bytes(data)
        im = Image.open(io.BytesIO(data))
        decoded = np.asarray(im.convert("RGB"), dtype=np.uint8)
        tensors[name] = np.ascontiguousarray(decoded)
        index[name] = {"mode": im.mode, "size": [im.height, im.width], "bytes": len(data)}
    save_file(tensors, str(OUT / "pillow_rgb.safetensors"))
    meta = {
        "pillow": Image.__version__ if hasattr(Image, "__version__") else __import__("PIL").__version__,
        "libjpeg_turbo": features.version("libjpeg_turbo"),
        "zlib": features.version("zlib"),
        "files": index,
    }
    (OUT / "pillow_rgb.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {len(files)} images to {OUT}")


if __name__ == "__main__":
    main()
