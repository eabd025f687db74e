#!/usr/bin/env python3
"""Builds optical-flow evaluation pairs with real ground truth, in the FlyingChairs layout.

    /usr/bin/python3 tools/make_flow_eval_sets.py SRC_CASTLE_DIR SRC_SKIMAGE_DATA_DIR OUT_EVAL_DIR
        [--step K ...] [--force]

(scripts/fetch_flow_data.sh extracts the sources from Debian packages and runs this.)

Each output folder holds `<name>_img1.png`, `<name>_img2.png` (8-bit PNG) and `<name>_flow.flo`
(Middlebury .flo: float32 202021.25, int32 width, int32 height, then (u, v) float32 pairs row by row,
little-endian; u = x, v = y displacement from frame 1 to frame 2 in pixels; unknown = 1e10).

ViSP Castle-simu (visp-images-data, ViSP-images/mbt-depth/Castle-simu), 40 rendered frames:
  Images/Image_NNNN.pgm   640x480 grey, the colour ("Camera1") camera;
  Depth/Depth_NNNN.bin    u32 height, u32 width, u16 values; metres = raw * 2/65535, 0 = background;
  CameraPose/Camera_NNN.txt  4x4 cMo of the colour camera (object to camera);
  intrinsics px = py = 700, u0 = 320, v0 = 240 for both cameras.
  The depth maps are NOT taken from the colour camera: ViSP's own test (testGenericTracker.cpp)
  places the depth camera at depth_M_color = translation (-0.05, 0, 0), so a depth pixel
  (u_d, v) at depth Z shows up in the colour image at (u_d + 700 * 0.05 / Z, v), up to 58 px to
  the right. Using the depth map as if it were the colour camera's gives flow that is wrong on
  the objects' borders and the further the larger the motion (mean warp error 2.9 grey levels at
  i->i+1, 11.8 at i->i+5, vs 0.9 and 2.3 with the correction). This script first forward-warps
  each depth map into the colour camera (row by row, interpolating 1/Z between neighbouring depth
  pixels of the same surface, nearest surface wins), then for frame i -> j back-projects every
  colour pixel with that depth, maps it to camera j with cMo_j inv(cMo_i) and projects it.
  Unknown flow: background, colour pixels the depth camera does not see, points projecting
  outside frame j, and points hidden in frame j (their depth in camera j differs from frame j's
  depth map around the target pixel by more than max(3 mm, 1 %)).
  Sets: OUT/visp_castle (i -> i+1, 39 pairs) and OUT/visp_castle_k<K> for every other --step K
  (default --step 1 3: also visp_castle_k3, i -> i+3, 37 pairs). Frames are written as RGB PNGs
  (the grey frame replicated). As a check of the geometry, frame j is backward-warped with the
  computed flow and compared with frame i on the known pixels (mean absolute grey-level
  difference, pixel-weighted over the set) next to the same error with zero flow; the script fails
  unless the true-flow error is below half the zero-flow error.

Middlebury 2014 motorcycle (python3-skimage, skimage/data): motorcycle_left.png,
  motorcycle_right.png (741x500 RGB, copied unchanged) and motorcycle_disp.npz (arr_0, float32,
  left-image disparity; non-finite = unknown; Debian's copy uses inf, not NaN). Flow left -> right =
  (-disparity, 0). Written as OUT/middlebury_motorcycle/motorcycle_{img1.png,img2.png,flow.flo}.

A set whose folder exists is skipped (unless --force); each set is written to a temporary folder
that is renamed when complete. Needs numpy (Debian's python3-numpy); no Pillow: PNGs are written
with zlib.
"""
import argparse
import os
import re
import shutil
import struct
import zlib

import numpy as np

FX = FY = 700.0
U0, V0 = 320.0, 240.0
DEPTH_SCALE = 2.0 / 65535.0  # ViSP uses 0.000030518
COLOR_FROM_DEPTH_X = 0.05  # colour camera centre = depth camera centre + 5 cm along x
OCC_ABS, OCC_REL = 0.003, 0.01  # occlusion tolerance: max(3 mm, 1 % of depth)
SURFACE_JUMP = 0.01  # neighbouring depth pixels more than 1 % apart are different surfaces
UNKNOWN = 1e10
FLO_MAGIC = 202021.25


# ---------------------------------------------------------------- file formats
def write_png(path, img):
    """8-bit grey (H, W) or RGB (H, W, 3) PNG, written atomically."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    h, w = img.shape[:2]
    ctype = 0 if img.ndim == 2 else 2
    raw = np.concatenate([np.zeros((h, 1), np.uint8), img.reshape(h, -1)], axis=1).tobytes()

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    _write_atomic(path, data)


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path}: not a PNG file")
    return struct.unpack(">II", head[16:24])  # width, height


def write_flo(path, flow):
    flow = np.ascontiguousarray(flow, dtype="<f4")
    h, w = flow.shape[:2]
    _write_atomic(path, struct.pack("<fii", FLO_MAGIC, w, h) + flow.tobytes())


def _write_atomic(path, data):
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def read_pgm(path):
    """Binary (P5) 8-bit PGM, comments allowed in the header."""
    with open(path, "rb") as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:
        m = re.compile(rb"\s*(#[^\n]*\n\s*)*([^\s#]+)").match(data, pos)
        if not m:
            raise ValueError(f"{path}: bad PGM header")
        fields.append(m.group(2))
        pos = m.end()
    if fields[0] != b"P5" or int(fields[3]) != 255:
        raise ValueError(f"{path}: expected an 8-bit binary PGM (P5, maxval 255)")
    w, h = int(fields[1]), int(fields[2])
    pos += 1  # the single whitespace byte after maxval
    return np.frombuffer(data, np.uint8, w * h, pos).reshape(h, w)


def read_depth(path):
    with open(path, "rb") as f:
        data = f.read()
    h, w = struct.unpack("<II", data[:8])
    if len(data) != 8 + 2 * h * w:
        raise ValueError(f"{path}: {len(data)} bytes, expected 8 + 2*{h}*{w}")
    return np.frombuffer(data, "<u2", h * w, 8).reshape(h, w).astype(np.float64) * DEPTH_SCALE


def read_pose(path):
    m = np.loadtxt(path, dtype=np.float64)
    if m.shape != (4, 4):
        raise ValueError(f"{path}: expected a 4x4 matrix")
    return m


# ---------------------------------------------------------------- ViSP Castle-simu
def castle_frames(src):
    """{index: (image, depth, pose) paths} for the frames that have all three files."""
    def indexed(sub, pattern):
        d = os.path.join(src, sub)
        if not os.path.isdir(d):
            raise SystemExit(f"error: {d} not found (expected ViSP's mbt-depth/Castle-simu folder)")
        out = {}
        for name in os.listdir(d):
            m = re.fullmatch(pattern, name)
            if m:
                out[int(m.group(1))] = os.path.join(d, name)
        return out

    images = indexed("Images", r"Image_(\d+)\.pgm")
    depths = indexed("Depth", r"Depth_(\d+)\.bin")
    poses = indexed("CameraPose", r"Camera_(\d+)\.txt")
    idx = sorted(set(images) & set(depths) & set(poses))
    if len(idx) < 2:
        raise SystemExit(f"error: fewer than two complete frames under {src}")
    missing = (set(images) | set(depths) | set(poses)) - set(idx)
    if missing:
        print(f"[castle] frames without image, depth and pose skipped: {sorted(missing)}")
    return {i: (images[i], depths[i], poses[i]) for i in idx}


def depth_in_color_camera(zd):
    """Forward-warps a depth-camera Z map into the colour camera (pure x translation, same
    intrinsics): depth pixel (u, v) lands at (u + fx*b/Z, v). Each pair of horizontally
    neighbouring depth pixels on the same surface is rasterised along the row with 1/Z
    interpolated linearly (exact for planes); the nearest surface wins. 0 = no depth."""
    h, w = zd.shape
    out = np.full(h * w, np.inf)
    valid = zd > 0
    uc = np.arange(w, dtype=np.float64)[None, :] + FX * COLOR_FROM_DEPTH_X / np.where(valid, zd, 1.0)
    z0, z1 = zd[:, :-1], zd[:, 1:]
    same = valid[:, :-1] & valid[:, 1:] & (np.abs(z1 - z0) <= SURFACE_JUMP * np.minimum(z0, z1))
    rows = np.nonzero(same)[0]
    a, c, z0, z1 = uc[:, :-1][same], uc[:, 1:][same], z0[same], z1[same]
    start = np.ceil(np.minimum(a, c) - 1e-9).astype(np.int64)
    count = np.floor(np.maximum(a, c) + 1e-9).astype(np.int64) - start + 1
    span = c - a  # > 0 in practice; guard anyway
    span = np.where(np.abs(span) > 1e-12, span, 1e-12)
    for t in range(int(count.max()) if count.size else 0):
        s = np.nonzero(count > t)[0]
        p = start[s] + t
        keep = (p >= 0) & (p < w)
        s, p = s[keep], p[keep]
        frac = np.clip((p - a[s]) / span[s], 0.0, 1.0)
        z = 1.0 / ((1.0 - frac) / z0[s] + frac / z1[s])
        np.minimum.at(out, rows[s] * w + p, z)
    out[~np.isfinite(out)] = 0.0
    return out.reshape(h, w)


def bilinear(img, x, y):
    """img sampled at (x, y); also the mask of points inside [0, w-1] x [0, h-1]."""
    h, w = img.shape
    inside = (x >= 0) & (y >= 0) & (x <= w - 1) & (y <= h - 1)
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), w - 2)
    y0 = np.minimum(np.floor(y).astype(np.int64), h - 2)
    fx, fy = x - x0, y - y0
    img = img.astype(np.float64)
    val = (img[y0, x0] * (1 - fx) * (1 - fy) + img[y0, x0 + 1] * fx * (1 - fy)
           + img[y0 + 1, x0] * (1 - fx) * fy + img[y0 + 1, x0 + 1] * fx * fy)
    return val, inside


def castle_flow(zi, zj, pose_i, pose_j):
    """Flow (H, W, 2) from colour frame i to j; the mask of known pixels (depth, inside frame j,
    not occluded there) and the mask of pixels with depth that land inside frame j."""
    h, w = zi.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = (u - U0) / FX, (v - V0) / FY
    pts = np.stack([x * zi, y * zi, zi, np.ones_like(zi)], axis=-1)
    q = pts @ (pose_j @ np.linalg.inv(pose_i)).T
    has_depth = zi > 0
    zq = np.where(has_depth, q[..., 2], 1.0)
    uj = FX * q[..., 0] / zq + U0
    vj = FY * q[..., 1] / zq + V0
    inside = (uj >= 0) & (vj >= 0) & (uj <= w - 1) & (vj <= h - 1) & (q[..., 2] > 0)
    # visible in j: some pixel of the 2x2 neighbourhood of the target holds this depth
    x0 = np.clip(np.floor(uj).astype(np.int64), 0, w - 2)
    y0 = np.clip(np.floor(vj).astype(np.int64), 0, h - 2)
    best = np.full((h, w), np.inf)
    for dy in (0, 1):
        for dx in (0, 1):
            zz = zj[y0 + dy, x0 + dx]
            best = np.minimum(best, np.where(zz > 0, np.abs(zz - q[..., 2]), np.inf))
    visible = best <= np.maximum(OCC_ABS, OCC_REL * q[..., 2])
    flow = np.stack([uj - u, vj - v], axis=-1)
    return flow, has_depth & inside & visible, has_depth & inside


def warp_errors(img_i, img_j, flow, mask):
    """Sum of |frame j backward-warped with flow - frame i| and of |frame j - frame i| over mask."""
    h, w = img_i.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    warped, _ = bilinear(img_j, u + np.where(mask, flow[..., 0], 0.0), v + np.where(mask, flow[..., 1], 0.0))
    a = img_i.astype(np.float64)
    return (np.abs(warped - a)[mask].sum(), np.abs(img_j.astype(np.float64) - a)[mask].sum(), int(mask.sum()))


def make_castle_set(src, out_dir, step, force):
    name = "visp_castle" if step == 1 else f"visp_castle_k{step}"
    dest = os.path.join(out_dir, name)
    if os.path.isdir(dest) and not force:
        print(f"[castle] {dest} exists, skipped")
        return
    frames = castle_frames(src)
    idx = sorted(frames)
    pairs = [(i, i + step) for i in idx if i + step in frames]
    if not pairs:
        raise SystemExit(f"error: no frame pairs i -> i+{step} under {src}")
    tmp = dest + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    cache = {}

    def frame(i):
        if i not in cache:
            img_p, depth_p, pose_p = frames[i]
            img = read_pgm(img_p)
            z = depth_in_color_camera(read_depth(depth_p))
            if z.shape != img.shape:
                raise SystemExit(f"error: {depth_p} is {z.shape}, image {img_p} is {img.shape}")
            for old in [k for k in cache if k < i - step]:
                del cache[old]
            cache[i] = (img, z, read_pose(pose_p))
        return cache[i]

    e_true = e_zero = e_true_geo = e_zero_geo = 0.0
    n_known = n_geo = n_pixels = 0
    mags = []
    for i, j in pairs:
        img_i, z_i, pose_i = frame(i)
        img_j, z_j, pose_j = frame(j)
        flow, known, geo = castle_flow(z_i, z_j, pose_i, pose_j)
        t, z, n = warp_errors(img_i, img_j, flow, known)
        e_true, e_zero, n_known = e_true + t, e_zero + z, n_known + n
        t, z, n = warp_errors(img_i, img_j, flow, geo)  # occluded pixels included
        e_true_geo, e_zero_geo, n_geo = e_true_geo + t, e_zero_geo + z, n_geo + n
        n_pixels += known.size
        mags.append(np.hypot(flow[..., 0], flow[..., 1])[known])
        out = np.where(known[..., None], flow, UNKNOWN).astype(np.float32)
        stem = os.path.join(tmp, f"castle_{i:04d}_{j:04d}")
        write_png(stem + "_img1.png", np.repeat(img_i[..., None], 3, axis=2))
        write_png(stem + "_img2.png", np.repeat(img_j[..., None], 3, axis=2))
        write_flo(stem + "_flow.flo", out)
    mean_true, mean_zero = e_true / n_known, e_zero / n_known
    mags = np.concatenate(mags)
    print(f"[castle] {name}: {len(pairs)} pairs i -> i+{step}, known flow on {100.0 * n_known / n_pixels:.1f}% "
          f"of pixels, |flow| mean {mags.mean():.2f} px (median {np.median(mags):.2f}, max {mags.max():.1f})")
    print(f"[castle] {name}: warp error on known pixels (mean |frame j warped - frame i|, grey levels): "
          f"true flow {mean_true:.2f}, zero flow {mean_zero:.2f} (with the occluded pixels: "
          f"{e_true_geo / n_geo:.2f} vs {e_zero_geo / n_geo:.2f})")
    if not mean_true < 0.5 * mean_zero:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SystemExit(f"error: {name}: the computed flow does not explain the frames (warp error "
                         f"{mean_true:.2f} vs {mean_zero:.2f} with zero flow); check the file conventions")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    print(f"[castle] wrote {dest}")


# ---------------------------------------------------------------- Middlebury motorcycle
def make_motorcycle(src, out_dir, force):
    dest = os.path.join(out_dir, "middlebury_motorcycle")
    if os.path.isdir(dest) and not force:
        print(f"[motorcycle] {dest} exists, skipped")
        return
    left = os.path.join(src, "motorcycle_left.png")
    right = os.path.join(src, "motorcycle_right.png")
    disp_p = os.path.join(src, "motorcycle_disp.npz")
    for p in (left, right, disp_p):
        if not os.path.isfile(p):
            raise SystemExit(f"error: {p} not found (expected python3-skimage's skimage/data folder)")
    with np.load(disp_p) as z:
        disp = np.asarray(z["arr_0"], dtype=np.float64)
    w, h = png_size(left)
    if png_size(right) != (w, h) or disp.shape != (h, w):
        raise SystemExit(f"error: motorcycle sizes differ: left {w}x{h}, right {png_size(right)}, disparity {disp.shape}")
    known = np.isfinite(disp)
    flow = np.stack([-disp, np.zeros_like(disp)], axis=-1)
    flow[~known] = UNKNOWN
    tmp = dest + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    shutil.copyfile(left, os.path.join(tmp, "motorcycle_img1.png"))
    shutil.copyfile(right, os.path.join(tmp, "motorcycle_img2.png"))
    write_flo(os.path.join(tmp, "motorcycle_flow.flo"), flow.astype(np.float32))
    d = disp[known]
    print(f"[motorcycle] 1 pair {w}x{h}, known flow on {100.0 * known.mean():.1f}% of pixels, "
          f"disparity {d.min():.1f}..{d.max():.1f} px (mean {d.mean():.1f})")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    print(f"[motorcycle] wrote {dest}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("castle_dir", help="ViSP-images/mbt-depth/Castle-simu")
    ap.add_argument("skimage_data_dir", help="skimage/data (motorcycle_left.png, ...)")
    ap.add_argument("out_dir")
    ap.add_argument("--step", type=int, action="append",
                    help="frame distance of the Castle pairs (repeatable; default 1 and 3)")
    ap.add_argument("--force", action="store_true", help="rebuild sets whose folder exists")
    args = ap.parse_args()
    steps = sorted(set(args.step or [1, 3]))
    if any(k < 1 for k in steps):
        ap.error("--step must be >= 1")
    os.makedirs(args.out_dir, exist_ok=True)
    for k in steps:
        make_castle_set(args.castle_dir, args.out_dir, k, args.force)
    make_motorcycle(args.skimage_data_dir, args.out_dir, args.force)


if __name__ == "__main__":
    main()
