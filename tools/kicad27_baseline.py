#!/usr/bin/env python3
"""The shape-histogram baseline for KiCad-27 on a given split (tools/make_kicad27.py's layout).

    apt-get install python3-numpy python3-sklearn
    /usr/bin/python3 tools/kicad27_baseline.py KICAD27_DIR [--points 1024] [--seed 0]

Each model's surface is sampled by area (as perceiver.cpp does), centred and scaled into the unit
sphere; its features are rotation-invariant shape histograms: D2 (distances between random point
pairs), A3 (angles of random point triples), the distances from the centroid, and the principal
axes' variance ratios. A random forest (500 trees) is trained on train/ and scored on test/
(per class and in all), and the majority class's share is printed beside it. Reference script,
not a product dependency.
"""
import argparse
import os
import re
import sys
import zlib

import numpy as np

NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def read_vrml(path):
    """Every IndexedFaceSet's points (its own, or a DEF'd Coordinate's through coord USE) and
    coordIndex polygons, fan-triangulated and merged. Transform nodes are ignored (3 of KiCad's
    models have them; perceiver.cpp applies them)."""
    text = open(path, "r", errors="replace").read()
    defs = {m.group(1): m.group(2) for m in
            re.finditer(r"DEF\s+(\S+)\s+Coordinate\s*\{\s*point\s*\[([^\]]*)\]", text)}
    verts, tris, base = [], [], 0
    for block in re.finditer(r"IndexedFaceSet\s*\{", text):
        body = text[block.end():]
        end = body.find("IndexedFaceSet")
        body = body if end < 0 else body[:end]
        pm = re.search(r"(?<![A-Za-z])Coordinate\s*\{\s*point\s*\[([^\]]*)\]", body)
        um = re.search(r"coord\s+USE\s+(\S+)", body)
        im = re.search(r"coordIndex\s*\[([^\]]*)\]", body)
        if um and (not pm or um.start() < pm.start()):  # the set's own coord is the earlier one
            points = defs.get(um.group(1))
        else:
            points = pm.group(1) if pm else None
        if points is None or not im:
            continue
        p = np.array(re.findall(NUM, points), dtype=np.float64).reshape(-1, 3)
        idx = [int(v) for v in re.findall(r"-?\d+", im.group(1))]
        poly = []
        for i in idx + [-1]:
            if i == -1:
                for k in range(1, len(poly) - 1):
                    tris.append((base + poly[0], base + poly[k], base + poly[k + 1]))
                poly = []
            else:
                poly.append(i)
        verts.append(p)
        base += len(p)
    if not verts:
        raise ValueError(f"{path}: no IndexedFaceSet")
    return np.concatenate(verts), np.array(tris, dtype=np.int64).reshape(-1, 3)


def sample(verts, tris, n, rng):
    if len(tris) == 0:
        return verts[rng.integers(0, len(verts), n)]
    a, b, c = verts[tris[:, 0]], verts[tris[:, 1]], verts[tris[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    if area.sum() <= 0:
        return verts[rng.integers(0, len(verts), n)]
    t = rng.choice(len(tris), n, p=area / area.sum())
    r1, r2 = np.sqrt(rng.random(n))[:, None], rng.random(n)[:, None]
    p = (1 - r1) * a[t] + r1 * (1 - r2) * b[t] + r1 * r2 * c[t]
    p -= p.mean(0)
    return p / max(np.linalg.norm(p, axis=1).max(), 1e-12)


def features(p, rng, pairs=20000, bins=32):
    i, j, k = (rng.integers(0, len(p), pairs) for _ in range(3))
    d2 = np.linalg.norm(p[i] - p[j], axis=1)
    u, v = p[i] - p[k], p[j] - p[k]
    cos = (u * v).sum(1) / np.maximum(np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1), 1e-12)
    a3 = np.arccos(np.clip(cos, -1, 1))
    r = np.linalg.norm(p, axis=1)
    ev = np.sort(np.linalg.eigvalsh(np.cov(p.T)))[::-1]
    return np.concatenate([np.histogram(d2, bins, (0, 2))[0] / pairs, np.histogram(a3, bins, (0, np.pi))[0] / pairs,
                           np.histogram(r, bins, (0, 1))[0] / len(p), ev / max(ev.sum(), 1e-12)])


def load(split_dir, points, seed):
    classes = sorted(d for d in os.listdir(split_dir) if not d.startswith("."))
    x, y, names = [], [], []
    for ci, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(split_dir, c))):
            rng = np.random.default_rng([seed, zlib.crc32(f.encode())])
            v, t = read_vrml(os.path.join(split_dir, c, f))
            x.append(features(sample(v, t, points, rng), rng))
            y.append(ci)
            names.append(f)
    return np.array(x), np.array(y), classes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--points", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    from sklearn.ensemble import RandomForestClassifier
    xtr, ytr, classes = load(os.path.join(a.dir, "train"), a.points, a.seed)
    xte, yte, test_classes = load(os.path.join(a.dir, "test"), a.points, a.seed)
    if test_classes != classes:
        sys.exit("kicad27_baseline: train/ and test/ hold different classes")
    rf = RandomForestClassifier(n_estimators=500, random_state=a.seed, n_jobs=-1).fit(xtr, ytr)
    pred = rf.predict(xte)
    print(f"shape histograms + random forest: {np.mean(pred == yte):.4f} on {len(yte)} test models "
          f"({len(ytr)} training); majority class {np.bincount(yte).max() / len(yte):.4f}")
    for ci, c in enumerate(classes):
        m = yte == ci
        print(f"  {c:32s} {np.mean(pred[m] == ci):.4f} ({int((pred[m] == ci).sum())}/{int(m.sum())})")


if __name__ == "__main__":
    main()
