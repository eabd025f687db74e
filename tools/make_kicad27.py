#!/usr/bin/env python3
"""Builds KiCad-27, a point-cloud classification set, from KiCad's 3-D part library (VRML).

    apt-get download kicad-packages3d
    dpkg-deb --fsys-tarfile kicad-packages3d_*.deb | tar -x -C /tmp/kicad --wildcards '*.wrl'
    /usr/bin/python3 tools/make_kicad27.py /tmp/kicad/usr/share/kicad/3dmodels OUT

Classes come from the library folder of each model (`<Library>.3dshapes/<part>.wrl`):
pitch and size suffixes are stripped (`Connector_PinHeader_2.54mm` -> `Connector_PinHeader`),
through-hole and surface-mount variants merged (`Capacitor_SMD`, `Capacitor_THT` -> `Capacitor`),
`Connector_Phoenix_*` merged with `TerminalBlock_*` (-> `TerminalBlock`), and classes with fewer
than --min-models models dropped. Parts come in parametric families (1xN pin headers): a family is
the part name with every whole number replaced by '#' (pitches and sizes, written as decimals,
stay), and whole families are held out, so near-duplicates never straddle the split. Within each class the
families are taken in a seeded order into the test set until it holds about --test-fraction of
the class's models, skipping families that would take it past 1.5 times that (when every family
is that large, the smallest is held out; at least one family stays for training, and a class of
one family has no test models).

Writes OUT/train/<class>/<Library>__<part>.wrl and OUT/test/<class>/... as symbolic links to the
source files (the layout `perceiver train` reads with data.format "point_cloud") and
OUT/kicad27.json: the classes, their libraries, per-class counts and the held-out families.
Standard library only.
"""
import argparse
import hashlib
import json
import os
import re
import sys
from collections import defaultdict

SUFFIX = re.compile(r"_(\d+(\.\d+)?mm|\d+(\.\d+)?x\d+(\.\d+)?mm)$")


def class_of(library):
    """The merged class of a library folder name (without '.3dshapes')."""
    name = library
    while True:  # strip pitch/size suffixes, possibly several ("_2.54mm")
        stripped = SUFFIX.sub("", name)
        if stripped == name:
            break
        name = stripped
    name = re.sub(r"_(SMD|THT)$", "", name)
    name = re.sub(r"_(SMD|THT)_", "_", name)
    if name.startswith("Connector_Phoenix") or name.startswith("TerminalBlock"):
        return "TerminalBlock"
    return name


def family_of(part):
    """A parametric family: the part name with every whole number replaced by '#' (pin counts,
    rows: "PinHeader_1x05_P2.54mm_Vertical" -> "PinHeader_#x#_P2.54mm_Vertical"); decimals such as
    pitches and body sizes stay, so each pitch and size is a family of its own."""
    return re.sub(r"(?<![\d.])\d+(?![\d.])", "#", part)


def seeded_key(text, seed):
    return hashlib.sha256(f"{seed}:{text}".encode()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models_dir", help="the 3dmodels folder holding <Library>.3dshapes/*.wrl")
    ap.add_argument("out", help="output folder (created; must not exist or be empty)")
    ap.add_argument("--min-models", type=int, default=40, help="drop classes with fewer models (default 40)")
    ap.add_argument("--test-fraction", type=float, default=0.2, help="share of each class held out (default 0.2)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if not os.path.isdir(a.models_dir):
        sys.exit(f"make_kicad27: {a.models_dir}: not a directory")
    if os.path.exists(a.out) and os.listdir(a.out):
        sys.exit(f"make_kicad27: {a.out}: exists and is not empty")
    if not 0 < a.test_fraction < 1:
        sys.exit(f"make_kicad27: --test-fraction must be in (0, 1), got {a.test_fraction}")

    models = defaultdict(list)  # class -> [(library, part, path)]
    libraries = defaultdict(set)
    for entry in sorted(os.listdir(a.models_dir)):
        if not entry.endswith(".3dshapes"):
            continue
        library = entry[: -len(".3dshapes")]
        folder = os.path.join(a.models_dir, entry)
        for f in sorted(os.listdir(folder)):
            if f.lower().endswith(".wrl"):
                cls = class_of(library)
                models[cls].append((library, f[:-4], os.path.realpath(os.path.join(folder, f))))
                libraries[cls].add(library)
    if not models:
        sys.exit(f"make_kicad27: no <Library>.3dshapes/*.wrl under {a.models_dir}")

    kept = sorted(c for c in models if len(models[c]) >= a.min_models)
    manifest = {"source": os.path.realpath(a.models_dir), "min_models": a.min_models,
                "test_fraction": a.test_fraction, "seed": a.seed, "classes": {}}
    total = {"train": 0, "test": 0}
    for cls in kept:
        families = defaultdict(list)
        for m in models[cls]:
            families[family_of(m[1])].append(m)
        order = sorted(families, key=lambda f: seeded_key(cls + "/" + f, a.seed))
        target = a.test_fraction * len(models[cls])
        test_families, held = [], 0
        for fam in order:
            if held >= target or len(test_families) == len(order) - 1:
                break
            if held + len(families[fam]) > 1.5 * target:
                continue  # a family this large would overshoot: try the next
            test_families.append(fam)
            held += len(families[fam])
        if not test_families and len(order) > 1:  # every family is large: hold out the smallest
            test_families.append(min(order, key=lambda f: (len(families[f]), seeded_key(cls + "/" + f, a.seed))))
        counts = {"train": 0, "test": 0}
        for fam, members in families.items():
            part = "test" if fam in test_families else "train"
            d = os.path.join(a.out, part, cls)
            os.makedirs(d, exist_ok=True)
            for library, name, path in members:
                os.symlink(path, os.path.join(d, f"{library}__{name}.wrl"))
            counts[part] += len(members)
        for k in counts:
            total[k] += counts[k]
        manifest["classes"][cls] = {"libraries": sorted(libraries[cls]), "train": counts["train"],
                                    "test": counts["test"], "families": len(families),
                                    "test_families": sorted(test_families)}
    manifest["dropped"] = {c: len(models[c]) for c in sorted(models) if c not in kept}
    manifest["total"] = total
    with open(os.path.join(a.out, "kicad27.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"{len(kept)} classes, {total['train']} training and {total['test']} test models -> {a.out}")
    for cls in kept:
        c = manifest["classes"][cls]
        print(f"  {cls:32s} train {c['train']:5d}  test {c['test']:4d}  families {c['families']:4d}")


if __name__ == "__main__":
    main()
