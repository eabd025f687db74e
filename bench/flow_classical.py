#!/usr/bin/env python3
"""Classical optical-flow baselines on FlyingChairs-layout folders (the numbers a learned model must beat).

    python3 -m venv build/flow-venv
    build/flow-venv/bin/pip install numpy opencv-contrib-python-headless   # or opencv-python-headless (no TV-L1)
    build/flow-venv/bin/python bench/flow_classical.py DIR [DIR ...] [--json PATH]
        [--methods zero,farneback,dis,tvl1] [--threads N]

A folder holds `<name>_img1.png`, `<name>_img2.png` and `<name>_flow.flo` (Middlebury .flo; a pixel
is unknown when |u| or |v| > 1e9 or not finite), e.g. the sets scripts/fetch_flow_data.sh writes
under ${PERCEIVER_DATA:-~/.cache/perceiver}/flow/eval/.

Methods (all on grey frames, flow from frame 1 to frame 2):
  zero       flow = 0;
  farneback  cv2.calcOpticalFlowFarneback, pyr_scale 0.5, levels 5, winsize 15, iterations 3,
             poly_n 5, poly_sigma 1.2;
  dis        cv2.DISOpticalFlow, preset MEDIUM;
  tvl1       cv2.optflow.DualTVL1OpticalFlow with OpenCV's defaults (opencv-contrib only; slow, so
             not in the default list).
Per folder and method: EPE = sqrt((u - u_gt)^2 + (v - v_gt)^2) averaged over all known pixels of all
pairs of the folder (pixel-weighted), the share of known pixels with EPE < 1 px and < 3 px, the
number of pairs and of known pixels, and seconds per pair. Prints a Markdown table; --json PATH
also writes the numbers.
"""
import argparse
import glob
import json
import os
import struct
import sys
import time

import cv2
import numpy as np

FLO_MAGIC = 202021.25
DEFAULT_METHODS = "zero,farneback,dis"


def read_flo(path):
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) != 12:
            raise ValueError(f"{path}: truncated .flo")
        magic, w, h = struct.unpack("<fii", head)
        if magic != FLO_MAGIC or w <= 0 or h <= 0:
            raise ValueError(f"{path}: not a Middlebury .flo file (magic {magic}, {w}x{h})")
        data = np.frombuffer(f.read(), "<f4")
    if data.size != w * h * 2:
        raise ValueError(f"{path}: {data.size} floats, expected {w * h * 2}")
    return data.reshape(h, w, 2)


def read_grey(path):
    img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise ValueError(f"{path}: cannot read image")
    return img


def make_methods(names):
    methods = {}
    for name in names:
        if name == "zero":
            methods[name] = lambda a, b: np.zeros(a.shape + (2,), np.float32)
        elif name == "farneback":
            methods[name] = lambda a, b: cv2.calcOpticalFlowFarneback(
                a, b, None, pyr_scale=0.5, levels=5, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
        elif name == "dis":
            dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
            methods[name] = lambda a, b, dis=dis: dis.calc(a, b, None)
        elif name == "tvl1":
            if not hasattr(cv2, "optflow"):
                print("[flow_classical] tvl1 needs opencv-contrib-python(-headless); skipped", file=sys.stderr)
                continue
            tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
            methods[name] = lambda a, b, tvl1=tvl1: tvl1.calc(a, b, None)
        else:
            raise SystemExit(f"error: unknown method {name!r} (zero, farneback, dis, tvl1)")
    return methods


def pairs_of(folder):
    out = []
    for img1 in sorted(glob.glob(os.path.join(glob.escape(folder), "*_img1.png"))):
        stem = img1[: -len("_img1.png")]
        img2, flo = stem + "_img2.png", stem + "_flow.flo"
        if os.path.isfile(img2) and os.path.isfile(flo):
            out.append((os.path.basename(stem), img1, img2, flo))
        else:
            print(f"[flow_classical] {stem}: missing _img2.png or _flow.flo, skipped", file=sys.stderr)
    return out


def evaluate(folder, methods):
    pairs = pairs_of(folder)
    if not pairs:
        raise SystemExit(f"error: no <name>_img1.png/_img2.png/_flow.flo pairs in {folder}")
    acc = {m: {"epe_sum": 0.0, "lt1": 0, "lt3": 0, "seconds": 0.0} for m in methods}
    known_total = 0
    for name, p1, p2, pf in pairs:
        a, b, gt = read_grey(p1), read_grey(p2), read_flo(pf)
        if a.shape != b.shape or a.shape != gt.shape[:2]:
            raise SystemExit(f"error: {name}: frames {a.shape}, {b.shape} and flow {gt.shape[:2]} differ in size")
        known = np.isfinite(gt).all(axis=2) & (np.abs(gt) <= 1e9).all(axis=2)
        n = int(known.sum())
        known_total += n
        g = gt[known].astype(np.float64)
        for m, fn in methods.items():
            t0 = time.perf_counter()
            flow = fn(a, b)
            acc[m]["seconds"] += time.perf_counter() - t0
            e = np.hypot(flow[known][:, 0] - g[:, 0], flow[known][:, 1] - g[:, 1])
            acc[m]["epe_sum"] += float(e.sum())
            acc[m]["lt1"] += int((e < 1.0).sum())
            acc[m]["lt3"] += int((e < 3.0).sum())
    result = {"folder": os.path.abspath(folder), "pairs": len(pairs), "known_pixels": known_total, "methods": {}}
    for m, s in acc.items():
        k = max(known_total, 1)
        result["methods"][m] = {"epe": s["epe_sum"] / k, "epe_lt1": s["lt1"] / k, "epe_lt3": s["lt3"] / k,
                                "seconds_per_pair": s["seconds"] / len(pairs)}
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", metavar="DIR")
    ap.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated (default {DEFAULT_METHODS}; also tvl1)")
    ap.add_argument("--threads", type=int, default=1, help="OpenCV threads (default 1)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    methods = make_methods([m.strip() for m in args.methods.split(",") if m.strip()])
    results = []
    for folder in args.folders:
        r = evaluate(folder, methods)
        results.append(r)
        print(f"[flow_classical] {folder}: {r['pairs']} pairs, {r['known_pixels']} known pixels", file=sys.stderr)
    print(f"OpenCV {cv2.__version__}; EPE averaged over all known pixels of a folder (pixel-weighted)\n")
    print("| set | pairs | known pixels | method | EPE (px) | EPE < 1 px | EPE < 3 px | s/pair |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for r in results:
        name = os.path.basename(os.path.normpath(r["folder"]))
        for m, s in r["methods"].items():
            print(f"| {name} | {r['pairs']} | {r['known_pixels']} | {m} | {s['epe']:.3f} | "
                  f"{100 * s['epe_lt1']:.1f}% | {100 * s['epe_lt3']:.1f}% | {s['seconds_per_pair']:.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"opencv": cv2.__version__, "results": results}, f, indent=2)
        print(f"\n[flow_classical] wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
