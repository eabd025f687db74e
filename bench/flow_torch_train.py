#!/usr/bin/env python3
"""Trains Hugging Face's PerceiverForOpticalFlow (randomly initialised from a hub config) on a
FlyingChairs-layout folder of pairs (`perceiver flow-synth` writes one) with the recipe of
`perceiver train` on data.format "flow_folder": 3x3-patch features of both frames in [-1, 1],
end-point-error loss on 20 x the model's output, AdamW, linear warmup + cosine decay, gradient
clipping at 1. The held-out share (the last --test pairs in name order) gives the end-point
error next to zero flow after every epoch. A PyTorch peer for our learning curves: the same
model and data, so "does it learn" can be asked of both.

  build/bench-venv/bin/python bench/flow_torch_train.py --pairs DIR --config configs/flow_synth.json \
      --epochs 6 --batch 16 --lr 1e-3 --train-size 32 32

Runs in the PyPI venv of bench/torch_compare.py (torch, transformers) plus Pillow
(`build/bench-venv/bin/pip install pillow`); none of it is a product dependency.
"""
import argparse
import glob
import json
import math
import os
import time

import numpy as np
import torch
from transformers import PerceiverConfig, PerceiverForOpticalFlow

try:
    from PIL import Image
except ImportError:
    raise SystemExit("flow_torch_train.py needs Pillow to read the PNG frames: build/bench-venv/bin/pip install pillow")


def read_flo(path):
    with open(path, "rb") as f:
        magic = np.frombuffer(f.read(4), np.float32)[0]
        assert abs(magic - 202021.25) < 1e-3, f"{path}: not a .flo file"
        w, h = np.frombuffer(f.read(8), np.int32)
        return np.frombuffer(f.read(), np.float32).reshape(h, w, 2).copy()


def patch_features(f1, f2):
    """(2, 27, H, W): every pixel's 3x3 neighbourhood (zero padded), channel (dy*3+dx)*3+c."""
    out = []
    for img in (f1, f2):
        x = img.astype(np.float32) / 255.0 * 2.0 - 1.0
        h, w, _ = x.shape
        pad = np.zeros((h + 2, w + 2, 3), np.float32)
        pad[1:-1, 1:-1] = x
        chans = [pad[dy:dy + h, dx:dx + w, c] for dy in range(3) for dx in range(3) for c in range(3)]
        out.append(np.stack(chans))
    return np.stack(out)


def load(folder, h, w):
    names = sorted(p[:-len("_flow.flo")] for p in glob.glob(os.path.join(folder, "*_flow.flo")))
    feats, flows = [], []
    for n in names:
        f1 = np.asarray(Image.open(n + "_img1.png").convert("RGB"))[:h, :w]
        f2 = np.asarray(Image.open(n + "_img2.png").convert("RGB"))[:h, :w]
        feats.append(patch_features(f1, f2))
        flows.append(read_flo(n + "_flow.flo")[:h, :w])
    return torch.from_numpy(np.stack(feats)), torch.from_numpy(np.stack(flows))


def epe(pred, target):
    return torch.linalg.vector_norm(pred - target, dim=-1).mean()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--config", required=True, help="a run config whose model.hub_config is used")
    ap.add_argument("--train-size", type=int, nargs=2, required=True)
    ap.add_argument("--test", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    hub = dict(json.load(open(args.config))["model"]["hub_config"])
    hub["train_size"] = list(args.train_size)
    hub.pop("architectures", None)
    model = PerceiverForOpticalFlow(PerceiverConfig(**hub))
    h, w = args.train_size
    x, y = load(args.pairs, h, w)
    xtr, ytr, xte, yte = x[:-args.test], y[:-args.test], x[-args.test:], y[-args.test:]
    steps_per_epoch = len(xtr) // args.batch
    total = steps_per_epoch * args.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / args.warmup if s < args.warmup else
        0.5 * (1 + math.cos(math.pi * (s - args.warmup) / max(1, total - args.warmup))))
    zero = torch.linalg.vector_norm(yte, dim=-1).mean().item()
    print(f"{len(xtr)} training pairs, {len(xte)} held out; {sum(p.numel() for p in model.parameters())} parameters; "
          f"{total} steps of batch {args.batch}")
    t0 = time.time()
    step = 0
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xtr))
        run = 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * args.batch:(i + 1) * args.batch]
            pred = 20.0 * model(inputs=xtr[idx]).logits
            loss = epe(pred, ytr[idx])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            run += loss.item()
        model.eval()
        with torch.no_grad():
            test = sum(epe(20.0 * model(inputs=xte[k:k + 32]).logits, yte[k:k + 32]).item() * len(xte[k:k + 32])
                       for k in range(0, len(xte), 32)) / len(xte)
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {run / steps_per_epoch:.4f}, test end-point error "
              f"{test:.4f} px (zero flow {zero:.4f}); elapsed {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
