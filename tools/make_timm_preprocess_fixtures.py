#!/usr/bin/env python3
"""Reference fixtures for timm's evaluation transform (what `perceiver classify` applies to a timm
BoTNet folder): timm.data.resolve_data_config + create_transform on Pillow images.

Writes in OUT (default tests/data/botnet/preprocess):
  wide.png, tall.png     two small RGB photos-like images (smooth gradients + noise), 47 x 60 and 61 x 38
  cases.json             one entry per case: image, pretrained_cfg (input_size, crop_pct,
                         interpolation, mean, std), the resized size before the crop, and the key
  expected.safetensors   each case's (C, H, W) float32 tensor as timm gives it

The cases cover both resize rules (torchvision Resize of the shorter side when floor(H / crop_pct)
== floor(W / crop_pct); timm ResizeKeepRatio otherwise), centre crops whose offsets round half to
even, bilinear and bicubic, and grey models (Pillow convert("L") first, as a user of a 1-channel
timm model does). Case "fixture_default" is the BoTNet fixture folder's own preprocessing (timm's
defaults for its input size), which the classify CLI test uses.

Needs timm, torchvision and pillow in a PyPI venv; not a product dependency:
  /tmp/hfvenv/bin/python tools/make_timm_preprocess_fixtures.py [OUT]
"""
import json
import sys
from pathlib import Path

import numpy as np
import PIL
import timm
import torch
import torchvision
from PIL import Image
from safetensors.torch import save_file
from timm.data import create_transform, resolve_data_config

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

CASES = [
    # name, image, pretrained_cfg (absent fields take timm's defaults)
    ("fixture_default", "wide.png", {"input_size": [3, 64, 96]}),
    ("keep_ratio_tall", "tall.png", {"input_size": [3, 20, 30], "crop_pct": 0.95, "interpolation": "bilinear",
                                     "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.3, 0.4]}),
    ("shorter_side_wide", "wide.png", {"input_size": [3, 32, 32], "crop_pct": 0.875, "interpolation": "bicubic",
                                       "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}),
    ("shorter_side_tall", "tall.png", {"input_size": [3, 24, 24], "crop_pct": 0.9, "interpolation": "bilinear",
                                       "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}),
    ("grey_as_trained", "tall.png", {"input_size": [1, 28, 28], "crop_pct": 1.0, "interpolation": "bilinear",
                                     "mean": [0.0], "std": [1.0]}),
    ("grey_bicubic", "wide.png", {"input_size": [1, 28, 28], "crop_pct": 0.9, "interpolation": "bicubic",
                                  "mean": [0.286], "std": [0.353]}),
]


def make_image(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([
        128 + 100 * np.sin(x / 5.0 + y / 9.0),
        128 + 100 * np.cos(y / 4.0 - x / 11.0),
        255 * (x + y) / (h + w),
    ], axis=-1)
    img = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(img, "RGB")


def resized_size(img, cfg):
    """The size timm's Resize / ResizeKeepRatio gives before the centre crop."""
    t = create_transform(**cfg)
    resize = t.transforms[0]
    return list(resize(img).size[::-1])


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/botnet/preprocess")
    out.mkdir(parents=True, exist_ok=True)
    images = {"wide.png": make_image(47, 60, 1), "tall.png": make_image(61, 38, 2)}
    for name, img in images.items():
        img.save(out / name)
    images = {name: Image.open(out / name).convert("RGB") for name in images}  # as a user reads them

    tensors, cases = {}, []
    for key, image, pretrained in CASES:
        cfg = resolve_data_config({}, pretrained_cfg=pretrained)
        img = images[image]
        if cfg["input_size"][0] == 1:
            img = img.convert("L")
        transform = create_transform(**cfg)
        tensors[key] = transform(img).contiguous()
        assert tuple(tensors[key].shape) == tuple(cfg["input_size"]), (key, tensors[key].shape)
        cases.append({"key": key, "image": image, "pretrained_cfg": pretrained,
                      "resolved": {"crop_pct": cfg["crop_pct"], "interpolation": cfg["interpolation"],
                                   "mean": list(cfg["mean"]), "std": list(cfg["std"])},
                      "resized_size": resized_size(img, cfg)})
    save_file(tensors, str(out / "expected.safetensors"))
    meta = {"cases": cases, "versions": {"timm": timm.__version__, "torch": torch.__version__,
                                         "torchvision": torchvision.__version__, "pillow": PIL.__version__}}
    (out / "cases.json").write_text(json.dumps(meta, indent=2) + "\n")
    for c in cases:
        print(c["key"], c["resized_size"], tuple(tensors[c["key"]].shape))


if __name__ == "__main__":
    main()
