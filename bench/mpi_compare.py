#!/usr/bin/env python3
"""Data parallelism across processes vs threads on this machine, one config at a time (issue 14).

    /usr/bin/python3 bench/mpi_compare.py RUN_CONFIG.json [--steps 40] [--skip 5] [--perceiver build/perceiver]

Trains RUN_CONFIG for --steps steps (train.max_steps) three ways, one after another:
  1 x 2   one process, 2 threads (train.parallelism auto: batch slices or intra-op)
  2 x 1   mpiexec -n 2, 1 thread each, gradient buckets summed while backward runs
  2 x 1, no overlap   the same, buckets summed only after backward (--no-overlap)
and reports the median time per step (after --skip warm-up steps, from metrics.jsonl written every
step), the time per step spent waiting for the gradient sums after backward, and the overlap
achieved: 1 - (wait with overlap) / (wait without). Standard library only.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile


def run(cmd, out):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    steps = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if '"type":"train"' in l]
    return r.stdout, steps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--skip", type=int, default=5, help="warm-up steps left out of the median")
    ap.add_argument("--perceiver", default="build/perceiver")
    ap.add_argument("--bucket-mib", type=float, default=4)
    a = ap.parse_args()
    cfg = json.load(open(a.config))
    batch = cfg["train"]["batch_size"]
    base = ["--config", a.config, "--set", f"train.max_steps={a.steps}", "--set", "train.log_every=1",
            "--set", "train.checkpoint_every=0", "--force", "--bucket-mib", str(a.bucket_mib)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, launch, threads, extra in [("1 process x 2 threads", [], 2, []),
                                             ("2 processes x 1 thread", ["mpiexec", "-n", "2"], 1, []),
                                             ("2 processes x 1 thread, no overlap", ["mpiexec", "-n", "2"], 1,
                                              ["--no-overlap"])]:
            out = os.path.join(tmp, str(len(rows)))
            stdout, steps = run(launch + [a.perceiver, "train", "--threads", str(threads), "--out", out] + base + extra,
                                out)
            times = [batch / s["samples_per_s"] for s in steps[a.skip:] if s.get("samples_per_s")]
            m = re.search(r"([\d.]+) ms per step\); (\d+) of (\d+) buckets", stdout)
            wait_ms = float(m.group(1)) if m else 0.0
            buckets = f"{m.group(2)} of {m.group(3)}" if m else ""
            rows.append((name, 1000 * statistics.median(times), wait_ms, buckets))
    print(f"{a.config}: batch {batch}, {a.steps} steps (median of the last {a.steps - a.skip})")
    print("| layout | median ms / step | ms / step waiting for gradient sums | buckets started during backward |")
    print("|---|---|---|---|")
    for name, ms, wait, buckets in rows:
        print(f"| {name} | {ms:.1f} | {wait:.2f} | {buckets} |")
    if rows[2][2] > 0:
        print(f"overlap achieved: {100 * (1 - rows[1][2] / rows[2][2]):.0f}% of the gradient-sum time hidden behind "
              f"backward; 2 x 1 vs 1 x 2: {rows[0][1] / rows[1][1]:.2f}x")


if __name__ == "__main__":
    main()
