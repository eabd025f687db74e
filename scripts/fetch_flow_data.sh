#!/usr/bin/env bash
# Fetches the optical-flow data from Debian packages, without installing them system-wide:
# `apt-get download` into a temporary folder (removed at exit), then extract only what is needed.
#
#   scripts/fetch_flow_data.sh [DIR]     DIR defaults to ${PERCEIVER_DATA:-$HOME/.cache/perceiver}/flow
#
# Produces (each step is skipped when its output exists; delete a folder to rebuild it):
#   DIR/backgrounds/  the colour photographs among scikit-image's data images (python3-skimage):
#                     PNG/JPEG, colour, >= 256x256, without the motorcycle stereo pair and the
#                     synthetic / grey test images; copied unchanged. Backgrounds of synthetic pairs.
#   DIR/sprites/      RGBA clip art from openclipart-png (public domain): PNGs with an alpha channel
#                     (colour type 6 or 4, or a palette with tRNS) holding both fully transparent and
#                     fully opaque pixels (>= 1 % of the pixels each), 64..1024 px on the longest side,
#                     duplicates removed, at most 2000 (taken in a fixed pseudo-random order), copied
#                     unchanged as <category>__<...>__<name>.png (letters, digits, _ - . only).
#   DIR/eval/visp_castle/, DIR/eval/visp_castle_k3/   ViSP Castle-simu (visp-images-data), frame pairs
#                     i -> i+1 (39) and i -> i+3 (37) with exact sparse flow from depth + camera poses,
#   DIR/eval/middlebury_motorcycle/   the Middlebury 2014 motorcycle pair (python3-skimage), flow =
#                     (-disparity, 0); both made by tools/make_flow_eval_sets.py (FlyingChairs layout:
#                     <name>_img1.png, <name>_img2.png, <name>_flow.flo).
#   DIR/README.txt    what is where, the backgrounds kept, and the source package versions.
# Needs apt-get, dpkg-deb and /usr/bin/python3 with numpy (python3-numpy, from scripts/setup.sh).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-${PERCEIVER_DATA:-$HOME/.cache/perceiver}/flow}"
PY=/usr/bin/python3
MAX_SPRITES=2000

die() { echo "[fetch_flow_data] error: $*" >&2; exit 1; }
log() { echo "[fetch_flow_data] $*"; }

for tool in apt-get dpkg-deb tar; do
  command -v "$tool" >/dev/null || die "$tool not found (this script needs a Debian system)"
done
[ -x "$PY" ] || die "$PY not found"
"$PY" -c 'import numpy' 2>/dev/null || die "$PY cannot import numpy (apt-get install python3-numpy, or run scripts/setup.sh)"

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/perceiver-flow.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/debs"
# apt-get download as root fetches as the _apt user, which must be able to write the folder
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$TMP/debs"; fi

# download PKG: sets DEB to the downloaded .deb (downloads each package once per run)
DEB=""
find_deb() {  # sets DEB to $TMP/debs/PKG_*.deb, or "" when there is none
  local f
  DEB=""
  for f in "$TMP/debs/$1"_*.deb; do
    if [ -f "$f" ]; then DEB="$f"; return 0; fi
  done
}
download() {
  local pkg="$1"
  find_deb "$pkg"
  if [ -n "$DEB" ]; then return 0; fi
  log "downloading Debian package $pkg"
  if ! (cd "$TMP/debs" && apt-get download "$pkg") >"$TMP/apt-$pkg.log" 2>&1; then
    cat "$TMP/apt-$pkg.log" >&2
    die "cannot download the Debian package '$pkg' (apt-get download failed: is it in your apt sources, did 'apt-get update' run, is the network up?)"
  fi
  find_deb "$pkg"
  [ -n "$DEB" ] || die "apt-get download $pkg left no .deb in $TMP/debs"
  echo "$pkg $(dpkg-deb -f "$DEB" Version) ($(basename "$DEB"))" >>"$DIR/.sources"
}

# extract DEB DEST PATTERN...: only the members matching the patterns
extract() {
  local deb="$1" dest="$2"; shift 2
  mkdir -p "$dest"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dest" --wildcards "$@" \
    || die "extracting $* from $(basename "$deb") failed"
}

SKIMAGE_DATA=""
skimage_data() {  # extracts python3-skimage's data images once; sets SKIMAGE_DATA
  if [ -n "$SKIMAGE_DATA" ]; then return 0; fi
  download python3-skimage
  extract "$DEB" "$TMP/skimage" '*/skimage/data/*'
  SKIMAGE_DATA="$(find "$TMP/skimage" -type d -path '*/skimage/data' | head -n 1)"
  if [ -z "$SKIMAGE_DATA" ] || [ ! -f "$SKIMAGE_DATA/motorcycle_left.png" ]; then
    die "python3-skimage holds no skimage/data/motorcycle_left.png"
  fi
}

# ------------------------------------------------------------------ backgrounds
if [ -d "$DIR/backgrounds" ]; then
  log "backgrounds: $DIR/backgrounds exists, skipped"
else
  skimage_data
  rm -rf "$DIR/backgrounds.tmp"
  mkdir -p "$DIR/backgrounds.tmp"
  "$PY" - "$SKIMAGE_DATA" "$DIR/backgrounds.tmp" "$DIR/.backgrounds_kept" <<'EOF'
"""Copies the colour photographs among skimage's data images (header checks + a name blacklist)."""
import os, shutil, struct, sys
src, dst, listing = sys.argv[1:4]
# colour, large enough, but not photographs: stereo pair (evaluation data), synthetic test images,
# logos and silhouettes
NOT_PHOTOS = {"motorcycle_left.png", "motorcycle_right.png", "bw_text.png", "color.png", "phantom.png",
              "logo.png", "horse.png", "chessboard_RGB.png", "block.png", "green_palette.png",
              "palette_color.png", "foo3x5x4indexed.png", "truncated.jpg"}

def info(path):
    """(width, height, colour?, alpha?) from the PNG IHDR or the JPEG SOF header, or None."""
    with open(path, "rb") as f:
        d = f.read()
    if d[:8] == b"\x89PNG\r\n\x1a\n":
        w, h, bits, ctype = struct.unpack(">IIBB", d[16:26])
        return w, h, ctype in (2, 6) and bits == 8, ctype in (4, 6)
    if d[:2] == b"\xff\xd8":
        i = 2
        while i + 10 <= len(d) and d[i] == 0xFF:
            marker = d[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            length = struct.unpack(">H", d[i + 2:i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                bits, h, w, comps = struct.unpack(">BHHB", d[i + 4:i + 10])
                return w, h, comps == 3, False
            i += 2 + length
    return None

kept = []
for name in sorted(os.listdir(src)):
    if not name.lower().endswith((".png", ".jpg", ".jpeg")) or name in NOT_PHOTOS:
        continue
    meta = info(os.path.join(src, name))
    if meta is None:
        continue
    w, h, colour, alpha = meta
    if colour and not alpha and min(w, h) >= 256:
        shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))
        kept.append(f"{name} {w}x{h}")
if not kept:
    sys.exit("no background photographs found")
with open(listing, "w") as f:
    f.write("\n".join(kept) + "\n")
print(f"[fetch_flow_data] backgrounds: kept {len(kept)}: " + ", ".join(k.split()[0] for k in kept))
EOF
  mv "$DIR/backgrounds.tmp" "$DIR/backgrounds"
  log "backgrounds: wrote $DIR/backgrounds"
fi

# ------------------------------------------------------------------ evaluation sets
EVAL="$DIR/eval"
if [ -d "$EVAL/visp_castle" ] && [ -d "$EVAL/visp_castle_k3" ] && [ -d "$EVAL/middlebury_motorcycle" ]; then
  log "eval: $EVAL/{visp_castle,visp_castle_k3,middlebury_motorcycle} exist, skipped"
else
  skimage_data
  download visp-images-data
  extract "$DEB" "$TMP/visp" '*mbt-depth/Castle-simu/*'
  CASTLE="$(find "$TMP/visp" -type d -path '*mbt-depth/Castle-simu' | head -n 1)"
  [ -n "$CASTLE" ] || die "visp-images-data holds no mbt-depth/Castle-simu"
  log "eval: computing ground-truth flow (tools/make_flow_eval_sets.py)"
  "$PY" "$REPO/tools/make_flow_eval_sets.py" "$CASTLE" "$SKIMAGE_DATA" "$EVAL" --step 1 --step 3
fi

# ------------------------------------------------------------------ sprites
if [ -d "$DIR/sprites" ]; then
  log "sprites: $DIR/sprites exists, skipped"
else
  download openclipart-png
  log "sprites: extracting the PNGs (about 160 MB, temporary)"
  extract "$DEB" "$TMP/openclipart" '*.png'
  ROOT="$(find "$TMP/openclipart" -type d -path '*/openclipart/png' | head -n 1)"
  [ -n "$ROOT" ] || die "openclipart-png holds no usr/share/openclipart/png"
  rm -rf "$DIR/sprites.tmp"
  mkdir -p "$DIR/sprites.tmp"
  "$PY" - "$ROOT" "$DIR/sprites.tmp" "$MAX_SPRITES" <<'EOF'
"""Copies clip art PNGs whose alpha has both fully transparent and fully opaque pixels.
Decodes with Pillow when it is installed, else with zlib + numpy (unfiltering only the alpha bytes)."""
import hashlib, os, re, shutil, struct, sys, zlib
import numpy as np
root, dst, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
MIN_SIDE, MAX_SIDE, MIN_SHARE = 64, 1024, 0.01
try:
    from PIL import Image
except ImportError:
    Image = None

def chunks(data):
    pos = 8
    while pos + 8 <= len(data):
        n, tag = struct.unpack(">I4s", data[pos:pos + 8])
        yield tag, data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if tag == b"IEND":
            break

def header(data):
    """(width, height, bit depth, colour type, interlace, tRNS?) or None if not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    w, h, bits, ctype, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return w, h, bits, ctype, interlace, any(tag == b"tRNS" for tag, _ in chunks(data))

def unfilter(f, ftype):
    """PNG unfiltering of one byte plane (h, n) with bpp 1 (valid for one channel's bytes)."""
    h, n = f.shape
    out = np.zeros((h, n), np.uint8)
    prev = np.zeros(n, np.uint8)
    for r in range(h):
        t, row = ftype[r], f[r]
        if t == 0:
            cur = row.copy()
        elif t == 1:
            cur = np.cumsum(row, dtype=np.uint8)
        elif t == 2:
            cur = row + prev
        elif t == 3:
            b, x, a = prev.tolist(), row.tolist(), 0
            for i in range(n):
                a = x[i] = (x[i] + ((a + b[i]) >> 1)) & 255
            cur = np.array(x, np.uint8)
        elif t == 4:
            b, x, a, c = prev.tolist(), row.tolist(), 0, 0
            for i in range(n):
                bi = b[i]
                pa, pb, pc = abs(bi - c), abs(a - c), abs(a + bi - 2 * c)
                pred = a if pa <= pb and pa <= pc else (bi if pb <= pc else c)
                a = x[i] = (x[i] + pred) & 255
                c = bi
            cur = np.array(x, np.uint8)
        else:
            raise ValueError(f"bad filter type {t}")
        out[r] = cur
        prev = cur
    return out

def alpha_numpy(data, w, h, bits, ctype):
    idat = b"".join(d for tag, d in chunks(data) if tag == b"IDAT")
    raw = np.frombuffer(zlib.decompress(idat), np.uint8)
    if ctype in (4, 6):
        if bits != 8:
            return None
        bpp = 2 if ctype == 4 else 4
        rows = raw[: h * (w * bpp + 1)].reshape(h, w * bpp + 1)
        return unfilter(rows[:, 1 + bpp - 1::bpp], rows[:, 0])
    # palette: unfilter the index bytes, unpack, look up tRNS (missing entries are opaque)
    stride = (w * bits + 7) // 8
    rows = raw[: h * (stride + 1)].reshape(h, stride + 1)
    packed = unfilter(rows[:, 1:], rows[:, 0])
    if bits == 8:
        idx = packed
    else:
        idx = np.unpackbits(packed, axis=1).reshape(h, -1, bits)[:, :w]
        idx = (idx * (1 << np.arange(bits - 1, -1, -1, dtype=np.uint8))).sum(axis=2)
    trns = next(d for tag, d in chunks(data) if tag == b"tRNS")
    table = np.full(256, 255, np.uint8)
    table[: len(trns)] = np.frombuffer(trns, np.uint8)
    return table[idx]

def shares(path, data, meta):
    """(transparent share, opaque share) of the pixels, or None if it cannot be decoded."""
    w, h, bits, ctype, interlace, _ = meta
    if Image is not None:
        with Image.open(path) as im:
            hist = im.convert("RGBA").getchannel("A").histogram()
        return hist[0] / (w * h), hist[255] / (w * h)
    if interlace:
        return None
    a = alpha_numpy(data, w, h, bits, ctype)
    if a is None:
        return None
    return float((a == 0).mean()), float((a == 255).mean())

candidates = []
for dirpath, _, files in os.walk(root):
    for f in files:
        if f.lower().endswith(".png"):
            rel = os.path.relpath(os.path.join(dirpath, f), root)
            candidates.append((hashlib.sha1(rel.encode()).hexdigest(), rel))
candidates.sort()  # a fixed pseudo-random order spreads the kept sprites over all categories
seen, names, kept, checked, rejected = set(), set(), 0, 0, 0
for _, rel in candidates:
    if kept >= limit:
        break
    path = os.path.join(root, rel)
    with open(path, "rb") as fh:
        data = fh.read()
    meta = header(data)
    if meta is None:
        continue
    w, h, bits, ctype, interlace, has_trns = meta
    if not (MIN_SIDE <= max(w, h) <= MAX_SIDE) or not (ctype in (4, 6) or (ctype == 3 and has_trns)):
        continue
    digest = hashlib.sha1(data).digest()
    if digest in seen:
        continue
    seen.add(digest)
    checked += 1
    try:
        s = shares(path, data, meta)
    except Exception as e:  # a damaged file: skip it
        print(f"[fetch_flow_data] sprites: {rel}: {e}, skipped", file=sys.stderr)
        s = None
    if s is None or s[0] < MIN_SHARE or s[1] < MIN_SHARE:
        rejected += 1
        continue
    name = "__".join(re.sub(r"[^A-Za-z0-9_.-]", "_", part) for part in rel.split(os.sep))
    base, n = name[:-4], 2
    while name.lower() in names:
        name, n = f"{base}-{n}.png", n + 1
    names.add(name.lower())
    shutil.copyfile(path, os.path.join(dst, name))
    kept += 1
    if kept % 250 == 0:
        print(f"[fetch_flow_data] sprites: {kept} kept ...", flush=True)
print(f"[fetch_flow_data] sprites: kept {kept} of {checked} distinct alpha PNGs checked "
      f"({rejected} without both transparent and opaque pixels; decoder: {'Pillow' if Image else 'zlib+numpy'})")
if kept == 0:
    sys.exit("no sprites found")
EOF
  mv "$DIR/sprites.tmp" "$DIR/sprites"
  log "sprites: wrote $DIR/sprites"
fi

# ------------------------------------------------------------------ README
{
  echo "Optical-flow data for perceiver.cpp, made by scripts/fetch_flow_data.sh from Debian packages."
  echo "Do not commit it; rebuild a part by deleting its folder and running the script again."
  echo
  echo "backgrounds/  colour photographs from scikit-image's data images (python3-skimage; public domain"
  echo "              or CC0 per skimage's data/README), copied unchanged; the backgrounds of synthetic pairs:"
  sed 's/^/                /' "$DIR/.backgrounds_kept" 2>/dev/null || true
  echo "              (left out: the motorcycle stereo pair = evaluation data; grey images; synthetic test"
  echo "              images bw_text, color (colour wheel), phantom, logo, horse, chessboard; images < 256 px)"
  echo "sprites/      $(find "$DIR/sprites" -name '*.png' | wc -l) RGBA clip-art PNGs from openclipart-png (public domain), copied unchanged:"
  echo "              alpha with >= 1 % fully transparent and >= 1 % fully opaque pixels, 64..1024 px on the"
  echo "              longest side, duplicates removed; name = source path under /usr/share/openclipart/png, '/' -> '__'"
  echo "eval/         FlyingChairs layout (<name>_img1.png, <name>_img2.png, <name>_flow.flo; unknown flow = 1e10),"
  echo "              made by tools/make_flow_eval_sets.py:"
  for d in "$EVAL"/*/; do
    [ -d "$d" ] || continue
    echo "                $(basename "$d"): $(find "$d" -name '*_flow.flo' | wc -l) pairs"
  done
  echo "              visp_castle = ViSP Castle-simu (visp-images-data) frames i -> i+1, visp_castle_k3 = i -> i+3;"
  echo "              middlebury_motorcycle = Middlebury 2014 motorcycle (python3-skimage), flow = (-disparity, 0)."
  echo
  echo "Source packages (as downloaded):"
  sed 's/^/  /' "$DIR/.sources" 2>/dev/null | sort -u || true
} >"$DIR/README.txt"
log "done: $DIR (see $DIR/README.txt)"
