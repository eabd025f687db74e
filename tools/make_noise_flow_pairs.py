#!/usr/bin/env python3
"""Writes FlyingChairs-layout pairs of blurred uniform noise moved by one global translation.

A diagnostic data set for optical flow: every pixel has strong local texture, so a 3x3 patch of
each frame shows the motion. Pair i: a random RGB noise image (Gaussian blur of sigma BLUR), frame 2
= frame 1 moved by (dx, dy) (bilinear), ground truth the constant flow (dx, dy). Shifts are drawn
uniformly in [-MAX, MAX] per axis, or as integers in {-MAX..MAX} with --integer.

    build/flow-venv/bin/python tools/make_noise_flow_pairs.py OUT --count 4352 --size 32 --blur 0.8 --max 1

Needs numpy and opencv (the flow-venv of docs/BENCHMARKS.md); not a product dependency.
"""
import argparse
import os

import cv2
import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=4352)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--blur", type=float, default=0.8)
    ap.add_argument("--max", type=float, default=1.0, help="largest shift per axis, pixels")
    ap.add_argument("--integer", action="store_true", help="integer shifts only")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.count < 1 or a.size < 4 or a.blur < 0 or a.max < 0:
        ap.error("expected --count >= 1, --size >= 4, --blur >= 0, --max >= 0")
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    pad = int(np.ceil(a.max)) + 2
    for i in range(a.count):
        big = rng.random((a.size + 2 * pad, a.size + 2 * pad, 3)).astype(np.float32)
        if a.blur > 0:
            big = cv2.GaussianBlur(big, (0, 0), a.blur)
        big = (big - big.min()) / (big.max() - big.min() + 1e-6)
        if a.integer:
            dx, dy = rng.integers(-int(a.max), int(a.max) + 1, size=2).astype(np.float32)
        else:
            dx, dy = rng.uniform(-a.max, a.max, size=2).astype(np.float32)
        f1 = big[pad:pad + a.size, pad:pad + a.size]
        # frame 2 at p samples frame 1's content at p - (dx, dy): the content moves by +(dx, dy)
        m = np.float32([[1, 0, pad - dx], [0, 1, pad - dy]])
        f2 = cv2.warpAffine(big, m, (a.size, a.size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        for name, im in (("img1", f1), ("img2", f2)):
            cv2.imwrite(f"{a.out}/{i:05d}_{name}.png", (im * 255).round().astype(np.uint8))
        flow = np.zeros((a.size, a.size, 2), np.float32)
        flow[..., 0], flow[..., 1] = dx, dy
        with open(f"{a.out}/{i:05d}_flow.flo", "wb") as f:
            f.write(b"PIEH")
            np.array([a.size, a.size], np.int32).tofile(f)
            flow.tofile(f)
    print(f"wrote {a.count} pairs of {a.size} x {a.size} to {a.out}")


if __name__ == "__main__":
    main()
