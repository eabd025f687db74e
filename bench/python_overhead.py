#!/usr/bin/python3
"""What calling perceiver.cpp through its Python module costs over the C++ program, on the
language-perceiver structure (HF PerceiverForMaskedLM: 2,048 bytes in and out, 256 latents x
1,280, 26 self-attends; seeded random weights, as bench/torch_compare.py config 3).

Both sides run the same model folder on the same inputs, alternating in rounds on one machine:
- C++: `bench_e2e --mode infer` (the forward `perceiver run` runs, timed inside the program);
- Python: `perceiver.load(DIR)` then `model({"inputs": ids, "attention_mask": mask})`, timed
  around the call (array conversion in and out included).
It also times one whole run each way: `perceiver run --logits-only` (process start, load, forward,
write) against a Python process that imports the module, loads, calls and saves the logits.

Usage (Debian's python3 with python3-numpy, the module built in build/python):
    /usr/bin/python3 bench/python_overhead.py [--threads 1,2] [--rounds 3] [--iters 5] [--small]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import safetensors_bytes  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")


def config(small):
    c = {"architectures": ["PerceiverForMaskedLM"], "model_type": "perceiver", "vocab_size": 262,
         "num_blocks": 1, "num_self_attention_heads": 8, "num_cross_attention_heads": 8}
    if small:
        c.update(num_latents=16, d_latents=64, d_model=32, num_self_attends_per_block=2, qk_channels=32,
                 v_channels=64, max_position_embeddings=128)
    else:
        c.update(num_latents=256, d_latents=1280, d_model=768, num_self_attends_per_block=26, qk_channels=256,
                 v_channels=1280, max_position_embeddings=2048)
    return c


def run(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r.stdout


PY_CHILD = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
import perceiver
perceiver.set_num_threads(int(sys.argv[4]))
model = perceiver.load(sys.argv[2])
inputs = {k: np.load(sys.argv[3] + "/" + k + ".npy") for k in ("inputs", "attention_mask")}
warmup, iters = int(sys.argv[5]), int(sys.argv[6])
ms = []
for i in range(warmup + iters):
    t = time.perf_counter()
    out = model(inputs)
    if i >= warmup:
        ms.append(1000 * (time.perf_counter() - t))
print(json.dumps({"ms": ms, "logits_sum": float(out["logits"].astype(np.float64).sum())}))
"""

PY_ONESHOT = r"""
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import perceiver
perceiver.set_num_threads(int(sys.argv[4]))
model = perceiver.load(sys.argv[2])
out = model({k: np.load(sys.argv[3] + "/" + k + ".npy") for k in ("inputs", "attention_mask")})
np.save(sys.argv[3] + "/py_logits.npy", out["logits"])
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3, help="alternating C++ / Python rounds per thread count")
    ap.add_argument("--iters", type=int, default=5, help="timed calls per round")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--small", action="store_true", help="a tiny model (a quick check of the script)")
    args = ap.parse_args()
    e2e, cli = os.path.join(BUILD, "bench", "bench_e2e"), os.path.join(BUILD, "perceiver")
    if not os.path.exists(e2e):
        e2e = os.path.join(BUILD, "bench_e2e")
    pymod = os.path.join(BUILD, "python")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = os.path.join(tmp, "model")
        os.makedirs(model_dir)
        c = config(args.small)
        with open(os.path.join(model_dir, "config.json"), "w") as f:
            json.dump(c, f)
        run([e2e, "--model", model_dir, "--save-init", os.path.join(model_dir, "model.safetensors")])
        rng = np.random.default_rng(0)
        n = c["max_position_embeddings"]
        ids = rng.integers(6, 262, (1, n), dtype=np.int32)
        mask = np.ones((1, n), dtype=np.int32)
        np.save(os.path.join(tmp, "inputs.npy"), ids)
        np.save(os.path.join(tmp, "attention_mask.npy"), mask)
        inputs = os.path.join(tmp, "inputs.safetensors")
        open(inputs, "wb").write(safetensors_bytes({"inputs": ids, "attention_mask": mask}))
        print(f"language-perceiver structure{' (small)' if args.small else ''}: {json.dumps(c)}")
        for threads in [int(t) for t in args.threads.split(",")]:
            env = dict(os.environ, OMP_NUM_THREADS=str(threads))
            cpp_ms, py_ms, sums = [], [], []
            for _ in range(args.rounds):
                r = json.loads(run([e2e, "--model", model_dir, "--inputs", inputs, "--mode", "infer", "--threads",
                                    str(threads), "--warmup", str(args.warmup), "--iters", str(args.iters)]).splitlines()[-1])
                cpp_ms.append(r["median_ms"])
                p = json.loads(run([sys.executable, "-c", PY_CHILD, pymod, model_dir, tmp, str(threads), str(args.warmup),
                                    str(args.iters)], env).splitlines()[-1])
                py_ms.append(statistics.median(p["ms"]))
                sums.append(p["logits_sum"])
            c_med, p_med = statistics.median(cpp_ms), statistics.median(py_ms)
            # one whole run each way
            t = time.perf_counter()
            run([cli, "run", "--model", model_dir, "--inputs", inputs, "--outputs", os.path.join(tmp, "out.safetensors"),
                 "--logits-only", "--threads", str(threads)])
            cli_s = time.perf_counter() - t
            t = time.perf_counter()
            run([sys.executable, "-c", PY_ONESHOT, pymod, model_dir, tmp, str(threads)], env)
            py_s = time.perf_counter() - t
            print(json.dumps({"threads": threads, "cpp_forward_ms_per_round": cpp_ms, "python_call_ms_per_round": py_ms,
                              "cpp_median_ms": round(c_med, 2), "python_median_ms": round(p_med, 2),
                              "python_overhead_pct": round(100 * (p_med / c_med - 1), 2),
                              "cli_run_s": round(cli_s, 2), "python_process_s": round(py_s, 2),
                              "same_logits_every_round": len(set(sums)) == 1}))


if __name__ == "__main__":
    main()
