#!/usr/bin/env python3
"""Loads a perceiver.cpp BoTNet export (a run's export/ folder: config.json + model.safetensors in
timm's layout) into timm's ByobNet built with the same layout, strictly, and compares its logits on
the given inputs with perceiver.cpp's (`perceiver run` outputs). Reference tool for a PyPI venv
with torch and timm; not a product dependency.

  perceiver run --logits-only --model RUN/export --inputs IN.safetensors --outputs OUT.safetensors
  python tools/check_timm_export.py RUN/export IN.safetensors OUT.safetensors
"""
import json
import sys

import torch
from safetensors.torch import load_file
from timm.models.byobnet import ByoBlockCfg, ByoModelCfg, ByobNet, interleave_blocks


def main():
    folder, inputs, outputs = sys.argv[1:4]
    cfg = json.load(open(f"{folder}/config.json"))
    assert cfg["architecture"] == "botnet26t_256", cfg["architecture"]
    b = cfg["byob"]
    c, d, br = b["channels"], b["depths"], b["bottleneck_ratio"]
    layout = ByoModelCfg(
        blocks=(
            ByoBlockCfg(type="bottle", d=d[0], c=c[0], s=1, gs=0, br=br),
            ByoBlockCfg(type="bottle", d=d[1], c=c[1], s=2, gs=0, br=br),
            interleave_blocks(types=("bottle", "self_attn"), d=d[2], c=c[2], s=2, gs=0, br=br),
            ByoBlockCfg(type="self_attn", d=d[3], c=c[3], s=2, gs=0, br=br),
        ),
        stem_chs=b["stem_chs"], stem_type="tiered", stem_pool="maxpool", fixed_input_size=True,
        self_attn_layer="bottleneck", self_attn_kwargs=dict(num_heads=b["num_heads"]))
    size = cfg["pretrained_cfg"]["input_size"]
    model = ByobNet(layout, num_classes=cfg["num_classes"], in_chans=size[0], img_size=tuple(size[1:]))
    model.load_state_dict(load_file(f"{folder}/model.safetensors"), strict=True)
    model.eval()
    x = load_file(inputs)["pixel_values"]
    with torch.no_grad():
        ref = model(x)
    got = load_file(outputs)["logits"]
    err = (got - ref).abs().max().item() / max(1.0, ref.abs().max().item())
    print(f"timm loaded {folder} strictly; logits max|diff| / max(1, max|ref|) = {err:.3g}")
    sys.exit(0 if err < 1e-4 else 1)


if __name__ == "__main__":
    main()
