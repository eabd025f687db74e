#!/usr/bin/env python3
"""Writes an IDX image set (e.g. Debian's Fashion-MNIST) as PNG folders in the ImageFolder layout
that `perceiver train` reads with "data": {"format": "image_folder"}:
    OUT/train/<class>/<index>.png and OUT/val/<class>/<index>.png
Standard library only (zlib + struct), so it runs under any python3:
    python3 tools/idx_to_image_folders.py /usr/share/datasets/fashion-mnist /tmp/fmnist-png
"""
import gzip
import os
import struct
import sys
import zlib

CLASSES = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot"]


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def find(directory, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.exists(path):
            return path
    sys.exit(f"idx_to_image_folders: {directory}/{name}(.gz) not found")


def png_grey(width, height, pixels):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: idx_to_image_folders.py IDX_DIR OUT_DIR")
    src, out = sys.argv[1], sys.argv[2]
    for split, prefix in (("train", "train"), ("val", "t10k")):
        (n, rows, cols), pixels = read_idx(find(src, f"{prefix}-images-idx3-ubyte"))
        (_,), labels = read_idx(find(src, f"{prefix}-labels-idx1-ubyte"))
        for c in CLASSES:
            os.makedirs(os.path.join(out, split, c), exist_ok=True)
        size = rows * cols
        for i in range(n):
            path = os.path.join(out, split, CLASSES[labels[i]], f"{i:05d}.png")
            with open(path, "wb") as f:
                f.write(png_grey(cols, rows, pixels[i * size:(i + 1) * size]))
        print(f"{split}: {n} images of {rows}x{cols}")


if __name__ == "__main__":
    main()
