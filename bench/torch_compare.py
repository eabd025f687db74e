#!/usr/bin/env python3
"""End-to-end benchmark: perceiver.cpp (build/bench/bench_e2e) against PyTorch on the same weights and inputs.

Usage (from anywhere; the script finds the repository from its own path):

    python3 bench/torch_compare.py [--configs 1,2,3,4] [--threads 1,2] [--iters N] [--quick]
                                   [--bf16] [--out results.json] [--selftest] [--small] ...

The script runs under the virtual environment build/bench-venv. When started with another Python it
creates that venv if missing (`python3 -m venv build/bench-venv`, then `pip install torch transformers
safetensors numpy` from PyPI: the latest torch release) and re-executes itself with
build/bench-venv/bin/python. The PyPI packages serve this benchmark only; perceiver.cpp never uses Python.

For each configuration and thread count it
 1. writes the model folder (config.json) into a work directory and asks perceiver.cpp for its seeded
    initial weights (`bench_e2e --model DIR --save-init ...` -> DIR/model.safetensors; without the binary
    the weights come from a seeded PyTorch initialisation instead and the C++ rows say "not available");
 2. loads exactly those weights into a plain PyTorch model of the same architecture (bench/torch_models.py,
    parameter names = perceiver.cpp = Hugging Face names, load_state_dict(strict=True)), where every attention
    is F.scaled_dot_product_attention, fp32, torch.set_num_threads(T);
 3. writes the inputs once (DIR/inputs_<mode>_b<B>.safetensors) and times, each implementation in its own
    subprocess: perceiver.cpp, PyTorch eager, torch.compile (compile time reported; a failure or a timeout is
    reported, not fatal) and, with --bf16, PyTorch autocast(bfloat16) and bench_e2e --precision bf16 (inference,
    and for a training step mixed precision: autocast around forward + loss, fp32 master weights and AdamW).
    Inference runs under torch.inference_mode(); a training step is forward + loss + backward + AdamW
    (lr 1e-4, weight_decay 0, betas (0.9, 0.999), eps 1e-8; fused=True on CPU when available, else foreach).
    Warm-up iterations first, then the median and min ms per batch over the timed iterations;
 4. checks that the logits agree (bench_e2e --outputs vs PyTorch eager, max abs diff and max abs diff / max
    |logit|) and, for training, that the first step's loss agrees; mismatches are flagged, never fatal;
 5. prints a table and writes JSON: ms/batch, samples/s, GFLOP/s (analytic matmul FLOPs: 2 m n k for every
    Linear and for QK^T and PV; x3 for a training step), % of the measured sgemm peak (--sgemm-peak-gflops),
    peak RSS (MiB, from wait4() on the child; for PyTorch also the RSS right after import + weight loading),
    and per (config, mode, batch, threads) the ratios of perceiver.cpp to each PyTorch variant.

Configurations (issue 4):
  1  configs/fmnist_default.json (Perceiver classifier of this repo): train step at batch 64, inference at 64
     and 500.
  2  vision-perceiver-fourier structure (HF PerceiverForImageClassificationFourier, 224x224x3, 512 latents x
     1024, 8 blocks x 6 self-attends): inference at batch 1 and 8, train step at batch 2.
  3  language-perceiver structure (HF PerceiverForMaskedLM, 2048 bytes, 256 latents x 1280, 26 self-attends):
     inference at batch 1 and 4.
  4  input-size sweep at fixed latents (classifier config, 256 latents x 512, 1 cross + 2 self-attends):
     inference at batch 1 for M in --sweep-sizes. perceiver.cpp's config parser limits each image_size entry
     to 4096, so the default --sweep-layout 2d uses square grids (32^2 .. 448^2 = 200,704), which keeps the
     input width (1 + 2-D Fourier, 16 bands = 67 channels) the same at every size; --sweep-layout 1d uses 1-D
     inputs of exactly M (needs a parser that accepts M > 4096).
  5  configs/fmnist_vit.json (the ViT of this repo = transformers' ViTForImageClassification): train step and
     inference at batch 64.
  6  configs/fmnist_botnet.json (the BoTNet of this repo = timm's ByobNet in the botnet26t layout, the same
     weights): train step and inference at batch 64.

Benchmark configs set attention_probs_dropout_prob to 0 in the HF config.json (the hub value is 0.1, active
only in training) so that the first training loss is deterministic and comparable.

Other modes: --selftest (plain models vs the Hugging Face transformers classes on small configs, strict
weight loading both ways, logits/loss/gradients to ~1e-5, the HF test fixtures, Fourier features and the FLOP
formula vs torch's FlopCounterMode); --small (shrunk architectures, for smoke tests of the harness);
--quick (1 warm-up and 2 timed iterations, fewer batch sizes).

Mind the host: on a shared 2-core machine run one benchmark at a time and repeat 2-thread figures.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / "build" / "bench-venv"
VENV_PY = VENV / "bin" / "python"
PACKAGES = ["torch", "transformers", "timm", "safetensors", "numpy"]


# ----------------------------------------------------------------------------------------------
# Virtual environment bootstrap
# ----------------------------------------------------------------------------------------------

def _in_venv() -> bool:
    try:
        return Path(sys.prefix).resolve() == VENV.resolve()
    except OSError:
        return False


def ensure_venv():
    if _in_venv():
        try:
            import numpy  # noqa: F401
            import safetensors  # noqa: F401
            import torch  # noqa: F401
            return
        except ImportError:
            if os.environ.get("TORCH_COMPARE_REEXEC") == "2":
                raise
            print(f"[torch_compare] installing {' '.join(PACKAGES)} into {VENV}", file=sys.stderr)
            subprocess.check_call([str(VENV / "bin" / "pip"), "install", *PACKAGES])
            os.environ["TORCH_COMPARE_REEXEC"] = "2"
            os.execv(str(VENV_PY), [str(VENV_PY), str(Path(__file__).resolve()), *sys.argv[1:]])
    if not VENV_PY.exists():
        print(f"[torch_compare] creating {VENV} and installing {' '.join(PACKAGES)} from PyPI", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
        subprocess.check_call([str(VENV / "bin" / "pip"), "install", *PACKAGES])
    os.environ["TORCH_COMPARE_REEXEC"] = "1"
    os.execv(str(VENV_PY), [str(VENV_PY), str(Path(__file__).resolve()), *sys.argv[1:]])


# ----------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------

def _proc_status_mib(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def rss_now_mib() -> float:
    return _proc_status_mib("VmRSS")


def hwm_mib() -> float:
    """Peak RSS of this process's address space since exec (VmHWM). Unlike ru_maxrss it does not include the
    RSS of the parent at fork/exec time, which Linux carries over into the child's ru_maxrss."""
    return _proc_status_mib("VmHWM")


def peak_rss_self_mib() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


median = statistics.median


# Linux carries the ru_maxrss of the process that forks/execs into the child's ru_maxrss, so children are
# started by this tiny helper (plain python -S, ~10 MiB) rather than by the harness, which holds torch.
_SPAWNER_CODE = r"""
import json, os, sys, time
for line in sys.stdin:
    job = json.loads(line)
    out = os.open(job["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    fa = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0), (os.POSIX_SPAWN_DUP2, out, 1),
          (os.POSIX_SPAWN_DUP2, err, 2), (os.POSIX_SPAWN_CLOSE, out), (os.POSIX_SPAWN_CLOSE, err)]
    t0 = time.monotonic()
    try:
        pid = os.posix_spawn(job["cmd"][0], job["cmd"], job["env"], file_actions=fa)
    except OSError as e:
        os.close(out); os.close(err)
        sys.stdout.write(json.dumps({"rc": 127, "error": str(e), "wall_s": 0.0, "timed_out": False,
                                     "maxrss_kib": None}) + "\n"); sys.stdout.flush()
        continue
    os.close(out); os.close(err)
    timed_out = False
    while True:
        wpid, status, ru = os.wait4(pid, os.WNOHANG)
        if wpid == pid:
            break
        if time.monotonic() - t0 > job["timeout"]:
            timed_out = True
            os.kill(pid, 9)
            wpid, status, ru = os.wait4(pid, 0)
            break
        time.sleep(0.05)
    sys.stdout.write(json.dumps({"rc": os.waitstatus_to_exitcode(status), "wall_s": time.monotonic() - t0,
                                 "timed_out": timed_out, "maxrss_kib": ru.ru_maxrss}) + "\n")
    sys.stdout.flush()
"""


class Spawner:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-S", "-c", _SPAWNER_CODE], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def run(self, cmd, env, timeout_s, log_path):
        job = dict(cmd=[str(c) for c in cmd], env=env, timeout=timeout_s, stdout=str(log_path) + ".out",
                   stderr=str(log_path) + ".err")
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        r = json.loads(self.proc.stdout.readline())
        r["stdout"] = Path(job["stdout"]).read_text(errors="replace")
        r["stderr"] = Path(job["stderr"]).read_text(errors="replace")
        if r.get("error"):
            r["stderr"] += r["error"]
        r["peak_rss_mib"] = r["maxrss_kib"] / 1024.0 if r.get("maxrss_kib") else None
        return r

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except Exception:
            pass


_SPAWNER = None


def run_child(cmd, env, timeout_s, log_path):
    """Runs cmd (absolute path first); returns dict(rc, stdout, stderr, wall_s, peak_rss_mib (wait4), timed_out)."""
    global _SPAWNER
    if _SPAWNER is None:
        _SPAWNER = Spawner()
    return _SPAWNER.run(cmd, env, timeout_s, log_path)


def last_json_line(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def tail(text, n=600):
    text = (text or "").strip()
    return text[-n:]


# ----------------------------------------------------------------------------------------------
# Child process: one PyTorch implementation, timed
# ----------------------------------------------------------------------------------------------

def train_memory_breakdown(model, params, opt, spec, args, labels, autocast):
    """One more (untimed) training step, counting what it holds, in MiB: weights, gradients, AdamW
    moments, and the activations autograd saves for backward (unique storages that are not
    parameters, seen by torch.autograd.graph.saved_tensors_hooks) - the counterpart of
    bench_e2e's "memory" breakdown."""
    import torch
    mib = 1.0 / 1048576
    param_ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved_storages = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in param_ptrs:
            saved_storages[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        if autocast:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = spec.loss(model(*args), labels)
        else:
            loss = spec.loss(model(*args), labels)
    loss.backward()
    grads = sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
    opt.step()
    moments = sum(v.numel() * v.element_size() for st in opt.state.values() for v in st.values()
                  if torch.is_tensor(v) and v.dim() > 0)
    opt.zero_grad(set_to_none=True)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return dict(weights_mib=weights * mib, gradients_mib=grads * mib, optimizer_mib=moments * mib,
                saved_activations_mib=sum(saved_storages.values()) * mib)


def child_main(spec_path):
    job = json.load(open(spec_path))
    import numpy as np  # noqa: F401
    import torch
    rss_import = rss_now_mib()
    torch.set_num_threads(job["threads"])
    sys.path.insert(0, str(REPO / "bench"))
    import torch_models as tm
    from safetensors.torch import load_file, save_file

    model_dir = Path(job["model_dir"])
    spec = tm.make_spec(json.load(open(model_dir / "config.json")))
    result = dict(torch_version=torch.__version__, rss_after_import_mib=rss_import)

    if job["action"] == "init":
        torch.manual_seed(job.get("seed", 0))
        model = spec.build_model()
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, job["out"])
        print(json.dumps(result))
        return

    t_load = time.perf_counter()
    with torch.device("meta"):
        model = spec.build_model()
    state = load_file(str(model_dir / "model.safetensors"))
    model.load_state_dict(state, strict=True, assign=True)
    del state
    result["load_s"] = time.perf_counter() - t_load
    result["rss_after_load_mib"] = rss_now_mib()

    tensors = load_file(job["inputs"])
    args, labels = spec.model_args(tensors)
    model.prime(*args)
    impl, mode = job["impl"], job["mode"]
    warmup, iters = job["warmup"], job["iters"]
    if impl == "compile":
        warmup = max(1, warmup)
        fn = torch.compile(model)
    else:
        fn = model
    autocast = impl == "bf16_autocast"
    times, first_call_s, loss_first, saved = [], None, None, {}

    if mode == "infer":
        model.eval()
        with torch.inference_mode():
            for i in range(warmup + iters):
                t0 = time.perf_counter()
                if autocast:
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        out = fn(*args)
                else:
                    out = fn(*args)
                dt = time.perf_counter() - t0
                if i == 0:
                    first_call_s = dt
                if i == warmup:
                    saved["logits"] = out.float().contiguous().clone()
                if i >= warmup:
                    times.append(dt * 1e3)
                del out
    else:
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt, opt_kind = None, None
        for kind in ("fused", "foreach", "single"):
            try:
                kw = {"fused": True} if kind == "fused" else ({"foreach": True} if kind == "foreach" else {})
                opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, **kw)
                opt_kind = kind
                break
            except (RuntimeError, TypeError, ValueError):
                continue
        for i in range(warmup + iters):
            t0 = time.perf_counter()
            if autocast:  # mixed precision: bf16 autocast forward and loss, fp32 master weights
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    logits = fn(*args)
                    loss = spec.loss(logits, labels)
            else:
                logits = fn(*args)
                loss = spec.loss(logits, labels)
            loss.backward()
            try:
                opt.step()
            except RuntimeError:
                if opt_kind != "fused" or i != 0:
                    raise
                # fused AdamW not supported here: fall back to foreach (first step only, before any update)
                opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                                        foreach=True)
                opt_kind = "foreach"
                opt.step()
            opt.zero_grad(set_to_none=True)
            dt = time.perf_counter() - t0
            if i == 0:
                first_call_s = dt
                loss_first = float(loss.detach())
            if i == warmup:
                saved["logits"] = logits.detach().float().contiguous().clone()
                saved["loss"] = loss.detach().float().reshape(1).clone()
            if i >= warmup:
                times.append(dt * 1e3)
            del logits, loss
        result["optimizer"] = f"AdamW({opt_kind})"
        if impl != "compile":  # compiled graphs save their own tensors: no hook sees them
            result["memory"] = train_memory_breakdown(model, params, opt, spec, args, labels, autocast)
        saved["loss_first"] = torch.tensor([loss_first], dtype=torch.float32)
        result["loss_first"] = loss_first
    if job.get("outputs"):
        save_file(saved, job["outputs"])
    result.update(mode=mode, impl=impl, threads=job["threads"], warmup=warmup, iters=iters,
                  median_ms=median(times), min_ms=min(times), mean_ms=sum(times) / len(times), times_ms=times,
                  first_call_s=first_call_s, peak_rss_self_mib=hwm_mib(), ru_maxrss_self_mib=peak_rss_self_mib())
    print(json.dumps(result))


# ----------------------------------------------------------------------------------------------
# Configurations
# ----------------------------------------------------------------------------------------------

def hf_config(arch, **fields):
    """A hub-style config.json for an HF Perceiver task class."""
    c = {"architectures": [arch], "model_type": "perceiver", "attention_probs_dropout_prob": 0.0,
         "cross_attention_shape_for_attention": "kv", "cross_attention_widening_factor": 1,
         "hidden_act": "gelu", "initializer_range": 0.02, "layer_norm_eps": 1e-12, "qk_channels": None,
         "self_attention_widening_factor": 1, "use_query_residual": True, "v_channels": None,
         "torch_dtype": "float32"}
    num_labels = fields.pop("num_labels", None)
    c.update(fields)
    if num_labels is not None:
        c["id2label"] = {str(i): f"LABEL_{i}" for i in range(num_labels)}
        c["label2id"] = {f"LABEL_{i}": i for i in range(num_labels)}
    return c


def sweep_model(m, layout, small):
    if layout == "2d":
        side = int(round(m ** 0.5))
        image_size = [side, side]
    else:
        image_size = [m]
    model = {"type": "perceiver", "image_size": image_size, "in_channels": 1, "num_fourier_bands": 16,
             "num_latents": 256, "d_latents": 512, "cross_attention_heads": 1, "self_attention_heads": 8,
             "num_cross_attends": 1, "self_attends_per_block": 2, "num_classes": 10}
    if small:
        model.update(num_latents=32, d_latents=64)
    return model


def build_plan(args):
    """List of cases: dict(cfg, name, config (config.json object), runs [(mode, batch, input kwargs)], warmup, iters)."""
    plan = []
    small, quick = args.small, args.quick
    for cfg in args.configs:
        if cfg == 1:
            model = json.load(open(REPO / "configs" / "fmnist_default.json"))["model"]
            runs = [("train", 64, {}), ("infer", 64, {}), ("infer", 500, {})]
            if small:
                runs = [("train", 8, {}), ("infer", 8, {}), ("infer", 16, {})]
            plan.append(dict(cfg=1, name="fmnist_default", config={"model": model}, runs=runs, warmup=3, iters=20))
        elif cfg == 5:
            model = json.load(open(REPO / "configs" / "fmnist_vit.json"))["model"]
            if small:
                model.update(hidden_size=32, num_hidden_layers=1, intermediate_size=64)
            runs = [("train", 64, {}), ("infer", 64, {})] if not small else [("train", 8, {}), ("infer", 8, {})]
            plan.append(dict(cfg=5, name="fmnist_vit", config={"model": model}, runs=runs, warmup=3, iters=20))
        elif cfg == 6:
            model = json.load(open(REPO / "configs" / "fmnist_botnet.json"))["model"]
            if small:
                model.update(stem_chs=8, channels=[8, 16, 16, 32], depths=[1, 1, 2, 1], num_heads=2)
            runs = [("train", 64, {}), ("infer", 64, {})] if not small else [("train", 8, {}), ("infer", 8, {})]
            plan.append(dict(cfg=6, name="fmnist_botnet", config={"model": model}, runs=runs, warmup=3, iters=20))
        elif cfg == 2:
            if small:
                conf = hf_config("PerceiverForImageClassificationFourier", num_latents=32, d_latents=64, d_model=261,
                                 num_blocks=2, num_self_attends_per_block=2, num_self_attention_heads=8,
                                 num_cross_attention_heads=1, image_size=224, num_labels=10)
                hw = (32, 32)
            else:
                conf = hf_config("PerceiverForImageClassificationFourier", num_latents=512, d_latents=1024, d_model=261,
                                 num_blocks=8, num_self_attends_per_block=6, num_self_attention_heads=8,
                                 num_cross_attention_heads=1, image_size=224, num_labels=1000)
                hw = (224, 224)
            runs = [("infer", 1, {"image_hw": hw}), ("infer", 8 if not small else 2, {"image_hw": hw}),
                    ("train", 2, {"image_hw": hw})]
            if quick:
                runs = [r for r in runs if not (r[0] == "infer" and r[1] > 1)]
            plan.append(dict(cfg=2, name="vision-perceiver-fourier", config=conf, runs=runs, warmup=1, iters=3))
        elif cfg == 3:
            if small:
                conf = hf_config("PerceiverForMaskedLM", num_latents=16, d_latents=64, d_model=32, num_blocks=1,
                                 num_self_attends_per_block=2, num_self_attention_heads=8, num_cross_attention_heads=8,
                                 qk_channels=32, v_channels=64, vocab_size=262, max_position_embeddings=128)
            else:
                conf = hf_config("PerceiverForMaskedLM", num_latents=256, d_latents=1280, d_model=768, num_blocks=1,
                                 num_self_attends_per_block=26, num_self_attention_heads=8, num_cross_attention_heads=8,
                                 qk_channels=256, v_channels=1280, vocab_size=262, max_position_embeddings=2048)
            runs = [("infer", 1, {}), ("infer", 4, {})]
            if args.lm_train:
                runs.append(("train", 1, {}))
            if quick:
                runs = [r for r in runs if r[1] == 1]
            plan.append(dict(cfg=3, name="language-perceiver", config=conf, runs=runs, warmup=1, iters=5))
        elif cfg == 4:
            sizes = args.sweep_sizes if (args.sweep_sizes_given or not small) else [256, 1024]
            if quick and not args.sweep_sizes_given:
                sizes = sizes[:2]
            for m in sizes:
                model = sweep_model(m, args.sweep_layout, small)
                plan.append(dict(cfg=4, name=f"sweep_M{m}", config={"model": model}, runs=[("infer", 1, {})],
                                 warmup=1, iters=5, sweep_m=m))
    for case in plan:
        if args.modes:
            case["runs"] = [r for r in case["runs"] if r[0] in args.modes]
        if quick:
            case["warmup"], case["iters"] = 1, 2
        if args.warmup is not None:
            case["warmup"] = args.warmup
        if args.iters is not None:
            case["iters"] = args.iters
    return [c for c in plan if c["runs"]]


# ----------------------------------------------------------------------------------------------
# The parent: prepare folders, run the implementations, compare, report
# ----------------------------------------------------------------------------------------------

class Harness:
    def __init__(self, args):
        self.args = args
        self.records = []
        self.checks = []
        self.ratios = []
        self.cpp = Path(args.cpp_bin)
        self.cpp_available = self.cpp.is_file() and os.access(self.cpp, os.X_OK)
        self.cpp_bf16 = None  # unknown until tried
        self.workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="torch_compare_"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.peaks = {1: args.peak_1, 2: args.peak_2}
        for t, v in (args.sgemm_peak_gflops or {}).items():
            self.peaks[t] = v

    def env(self, threads):
        e = dict(os.environ)
        e["OMP_NUM_THREADS"] = str(threads)
        e["MKL_NUM_THREADS"] = str(threads)
        e["TORCHINDUCTOR_COMPILE_THREADS"] = "1"
        e.pop("TORCH_COMPARE_REEXEC", None)
        return e

    def torch_env(self, threads):
        e = self.env(threads)
        if self.args.tuned_malloc:
            e.update(MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_="68719476736", MALLOC_TOP_PAD_="1073741824")
        return e

    # -- preparation ----------------------------------------------------------------------------
    def prepare_model(self, case):
        import torch_models as tm
        d = self.workdir / case["name"]
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps(case["config"], indent=1))
        case["dir"] = d
        case["spec"] = tm.make_spec(case["config"])
        weights = d / "model.safetensors"
        case["weights_from"] = None
        if weights.exists() and self.args.reuse:
            case["weights_from"] = "reused"
            return
        if self.cpp_available:
            tmp = d / "init.safetensors"
            r = run_child([str(self.cpp), "--model", str(d), "--save-init", str(tmp)], self.env(1), 3600,
                          d / "save_init")
            if r["rc"] == 0 and tmp.exists():
                tmp.replace(weights)
                case["weights_from"] = "bench_e2e --save-init"
                return
            print(f"  ! bench_e2e --save-init failed (rc {r['rc']}): {tail(r['stderr'] or r['stdout'], 300)}")
            case["save_init_error"] = tail(r["stderr"] or r["stdout"], 600)
        job = dict(action="init", model_dir=str(d), out=str(weights), threads=1, seed=0)
        jp = d / "init_job.json"
        jp.write_text(json.dumps(job))
        r = run_child([sys.executable, str(Path(__file__).resolve()), "--child", str(jp)], self.torch_env(1), 3600,
                      d / "torch_init")
        if r["rc"] != 0:
            raise RuntimeError(f"PyTorch initialisation failed: {tail(r['stderr'])}")
        case["weights_from"] = "PyTorch seeded init (bench_e2e not available)"

    def prepare_inputs(self, case, mode, batch, kw):
        from safetensors.numpy import save_file
        p = case["dir"] / f"inputs_{mode}_b{batch}.safetensors"
        if not p.exists():
            arrays = case["spec"].make_inputs(batch, seed=1234 + batch, **kw)
            save_file(arrays, str(p))
        return p

    # -- one implementation ----------------------------------------------------------------------
    def run_impl(self, case, mode, batch, threads, impl, inputs):
        d = case["dir"]
        tag = f"{mode}_b{batch}_t{threads}_{impl}"
        outputs = d / f"out_{tag}.safetensors"
        if outputs.exists():
            outputs.unlink()
        rec = dict(config=case["cfg"], name=case["name"], mode=mode, batch=batch, threads=threads, impl=impl,
                   status="ok")
        if case.get("sweep_m"):
            rec["M"] = case["sweep_m"]
        w, n = case["warmup"], case["iters"]
        if impl.startswith("cpp"):
            if not self.cpp_available:
                rec.update(status="not available", error=f"{self.cpp} not found")
                return rec, None
            if impl == "cpp_bf16" and self.cpp_bf16 is False:
                rec.update(status="not available", error="bench_e2e rejected --precision bf16")
                return rec, None
            cmd = [str(self.cpp), "--model", str(d), "--inputs", str(inputs), "--mode", mode, "--threads",
                   str(threads), "--warmup", str(w), "--iters", str(n), "--outputs", str(outputs)]
            if impl == "cpp_bf16":
                cmd += ["--precision", "bf16"]
            if impl == "cpp_ckpt":
                cmd += ["--checkpointing"]
            if mode == "train":
                cmd += ["--parallelism", self.args.parallelism]
            r = run_child(cmd, self.env(threads), self.args.timeout, d / tag)
            j = last_json_line(r["stdout"])
            if r["rc"] != 0 or j is None:
                msg = tail(r["stderr"] or r["stdout"], 400)
                if impl == "cpp_bf16" and ("precision" in msg or "bf16" in msg):
                    self.cpp_bf16 = False
                    rec.update(status="not available", error=msg)
                else:
                    rec.update(status="timeout" if r["timed_out"] else "failed", error=msg, rc=r["rc"])
                return rec, None
            if impl == "cpp_bf16":
                self.cpp_bf16 = True
            rec.update(median_ms=j.get("median_ms"), min_ms=j.get("min_ms"), mean_ms=j.get("mean_ms"),
                       peak_rss_mib=r["peak_rss_mib"], peak_rss_self_mib=j.get("peak_rss_mib"),
                       rss_after_load_mib=j.get("rss_after_load_mib"), loss_first=j.get("loss_first"),
                       precision=j.get("precision"), wall_s=r["wall_s"], cpp_json=j)
            return rec, outputs if outputs.exists() else None
        # PyTorch
        if impl != "torch_bf16_autocast" and impl not in ("torch_eager", "torch_compile"):
            raise ValueError(impl)
        est = self.torch_mem_estimate_gb(case, batch)
        if est is not None and est > self.args.max_torch_mem_gb:
            rec.update(status="skipped", error=f"estimated {est:.1f} GB > --max-torch-mem-gb {self.args.max_torch_mem_gb}")
            return rec, None
        job = dict(action="bench", model_dir=str(d), inputs=str(inputs), mode=mode, threads=threads, warmup=w,
                   iters=n, outputs=str(outputs),
                   impl={"torch_eager": "eager", "torch_compile": "compile", "torch_bf16_autocast": "bf16_autocast"}[impl])
        jp = d / f"job_{tag}.json"
        jp.write_text(json.dumps(job))
        timeout = self.args.timeout + (self.args.compile_timeout if impl == "torch_compile" else 0)
        env = self.torch_env(threads)
        if impl == "torch_compile" and not self.args.warm_compile_cache:
            # a fresh inductor cache per run, so that the reported compile time is a cold compile
            cache = d / f"inductor_cache_{tag}"
            shutil.rmtree(cache, ignore_errors=True)
            env["TORCHINDUCTOR_CACHE_DIR"] = str(cache)
        r = run_child([sys.executable, str(Path(__file__).resolve()), "--child", str(jp)], env, timeout, d / tag)
        j = last_json_line(r["stdout"])
        if r["rc"] != 0 or j is None:
            msg = tail(r["stderr"] or r["stdout"], 600)
            if r["rc"] in (-9, 137) and not r["timed_out"]:
                msg = "killed (probably out of memory); " + msg
            rec.update(status="timeout" if r["timed_out"] else "failed", error=msg, rc=r["rc"],
                       wall_s=r["wall_s"])
            return rec, None
        rec.update(median_ms=j["median_ms"], min_ms=j["min_ms"], mean_ms=j["mean_ms"], peak_rss_mib=r["peak_rss_mib"],
                   peak_rss_self_mib=j["peak_rss_self_mib"], rss_after_import_mib=j["rss_after_import_mib"],
                   rss_after_load_mib=j["rss_after_load_mib"], loss_first=j.get("loss_first"),
                   first_call_s=j["first_call_s"], optimizer=j.get("optimizer"), wall_s=r["wall_s"],
                   torch_version=j["torch_version"], times_ms=j["times_ms"])
        if j.get("memory"):
            rec["memory"] = j["memory"]
        if impl == "torch_compile":
            rec["compile_s"] = j["first_call_s"]
        return rec, outputs if outputs.exists() else None

    def torch_mem_estimate_gb(self, case, batch):
        """Rough PyTorch inference peak for the sweep (inputs, LayerNorm, K, V of the cross-attention)."""
        if case["cfg"] != 4:
            return None
        spec = case["spec"]
        m, width = spec.input_tokens_and_width(None)
        per_token = 4 * (3 * width + 2 * width + 16)
        return (batch * m * per_token + 4 * 5e6) / 1e9 + 0.5

    # -- derived numbers -------------------------------------------------------------------------
    def add_rates(self, rec, case, sample_shape):
        if rec.get("median_ms") is None:
            return
        flops = case["spec"].forward_flops(rec["batch"], sample_shape) * (3 if rec["mode"] == "train" else 1)
        rec["gflop_per_batch"] = flops / 1e9
        rec["samples_per_s"] = rec["batch"] / (rec["median_ms"] / 1e3)
        rec["ms_per_sample"] = rec["median_ms"] / rec["batch"]
        rec["gflops"] = flops / 1e9 / (rec["median_ms"] / 1e3)
        rec["gflops_best"] = flops / 1e9 / (rec["min_ms"] / 1e3)
        peak = self.peaks.get(rec["threads"])
        if peak:
            # bf16 rows against the bf16 peak: vdpbf16ps does twice the multiply-adds of an fp32
            # FMA per cycle (perf_notes.md: 445 / 876 GFLOP/s measured against 222 / 438)
            if rec["impl"] in ("cpp_bf16", "torch_bf16_autocast"):
                peak *= 2
            rec["pct_sgemm_peak"] = 100.0 * rec["gflops"] / peak

    def compare(self, case, mode, batch, threads, a_impl, a_out, b_impl, b_out, tol):
        from safetensors.numpy import load_file
        import numpy as np
        chk = dict(config=case["cfg"], name=case["name"], mode=mode, batch=batch, threads=threads, impl=a_impl,
                   reference=b_impl)
        if a_out is None or b_out is None:
            return None
        a, b = load_file(str(a_out)), load_file(str(b_out))
        if "logits" in a and "logits" in b:
            la, lb = a["logits"].astype(np.float64), b["logits"].astype(np.float64)
            if la.shape != lb.shape:
                chk.update(logits_shape=[list(la.shape), list(lb.shape)], ok=False, note="logits shapes differ")
            else:
                mad = float(np.max(np.abs(la - lb)))
                scale = float(np.max(np.abs(lb)))
                chk.update(logits_max_abs_diff=mad, logits_max_abs=scale, logits_rel_diff=mad / max(scale, 1e-30))
                if mode == "infer":
                    chk["ok"] = chk["logits_rel_diff"] <= tol
        if mode == "train":
            note = "train mode: logits/loss of the first timed step follow warm-up AdamW updates (informative)"
            chk["note"] = note
        self.checks.append(chk)
        return chk

    def compare_loss(self, case, mode, batch, threads, rec_a, rec_b, tol):
        if mode != "train" or rec_a.get("loss_first") is None or rec_b.get("loss_first") is None:
            return None
        la, lb = float(rec_a["loss_first"]), float(rec_b["loss_first"])
        rel = abs(la - lb) / max(abs(lb), 1e-30)
        chk = dict(config=case["cfg"], name=case["name"], mode=mode, batch=batch, threads=threads,
                   impl=rec_a["impl"], reference=rec_b["impl"], loss_first=la, loss_first_ref=lb,
                   loss_rel_diff=rel, ok=rel <= tol)
        self.checks.append(chk)
        return chk

    # -- main loop ---------------------------------------------------------------------------------
    def run(self, plan):
        impls = self.args.impls
        for case in plan:
            print(f"\n== config {case['cfg']}: {case['name']}")
            self.prepare_model(case)
            spec = case["spec"]
            print(f"   {case['dir']}  weights: {case['weights_from']}  params: {spec.param_count():,}")
            for mode, batch, kw in case["runs"]:
                inputs = self.prepare_inputs(case, mode, batch, kw)
                from safetensors import safe_open
                with safe_open(str(inputs), "np") as f:
                    key = "images" if "images" in f.keys() else "inputs"
                    sample_shape = tuple(f.get_slice(key).get_shape()[1:])
                for threads in self.args.threads:
                    outs, recs = {}, {}
                    todo = [i for i in ("cpp", "torch_eager", "torch_compile") if i in impls]
                    if self.args.bf16:  # bf16 inference, and mixed-precision training steps
                        todo += [i for i in ("cpp_bf16", "torch_bf16_autocast") if i in impls]
                    if self.args.checkpointing and mode == "train":
                        todo.insert(1, "cpp_ckpt")
                    for impl in todo:
                        rec, out = self.run_impl(case, mode, batch, threads, impl, inputs)
                        self.add_rates(rec, case, sample_shape)
                        self.records.append(rec)
                        outs[impl], recs[impl] = out, rec
                        print_row(rec)
                    ref = "torch_eager"
                    for impl in ("cpp", "torch_compile"):
                        if impl in outs:
                            c = self.compare(case, mode, batch, threads, impl, outs[impl], ref, outs.get(ref),
                                             self.args.tol)
                            print_check(c)
                    for impl in ("cpp_bf16", "torch_bf16_autocast"):
                        if impl in outs:
                            c = self.compare(case, mode, batch, threads, impl, outs[impl], ref, outs.get(ref),
                                             self.args.tol_bf16)
                            print_check(c)
                    if mode == "train":
                        for impl in ("cpp", "cpp_ckpt", "torch_compile"):
                            if impl in recs and ref in recs:
                                print_check(self.compare_loss(case, mode, batch, threads, recs[impl], recs[ref],
                                                              self.args.tol))
                        for impl in ("cpp_bf16", "torch_bf16_autocast"):
                            if impl in recs and ref in recs:
                                print_check(self.compare_loss(case, mode, batch, threads, recs[impl], recs[ref],
                                                              self.args.tol_bf16))
                    for cpp_impl, torch_impls in (("cpp", ("torch_eager", "torch_compile", "torch_bf16_autocast")),
                                                  ("cpp_ckpt", ("torch_eager", "torch_compile")),
                                                  ("cpp_bf16", ("torch_bf16_autocast", "torch_eager", "torch_compile"))):
                        a = recs.get(cpp_impl)
                        if not a or a.get("median_ms") is None:
                            continue
                        for t in torch_impls:
                            b = recs.get(t)
                            if not b or b.get("median_ms") is None:
                                continue
                            self.ratios.append(dict(
                                config=case["cfg"], name=case["name"], mode=mode, batch=batch, threads=threads,
                                impl=cpp_impl, versus=t,
                                speedup=b["median_ms"] / a["median_ms"],          # > 1: perceiver.cpp faster
                                speedup_min=b["min_ms"] / a["min_ms"],
                                peak_mem_ratio=(a["peak_rss_mib"] / b["peak_rss_mib"]
                                                if a.get("peak_rss_mib") and b.get("peak_rss_mib") else None)))
                    self.write()
        self.summary()
        self.write()

    def write(self):
        if not self.args.out:
            return
        import torch
        meta = dict(date=time.strftime("%Y-%m-%d %H:%M:%S"), argv=sys.argv, torch_version=torch.__version__,
                    python=sys.version.split()[0], cpp_bin=str(self.cpp), cpp_available=self.cpp_available,
                    sgemm_peak_gflops=self.peaks, workdir=str(self.workdir), nproc=os.cpu_count(),
                    tuned_malloc=self.args.tuned_malloc,
                    flops_note="analytic matmul FLOPs: 2*m*n*k per Linear, QK^T and PV; training step = 3x forward",
                    loadavg=os.getloadavg())
        Path(self.args.out).write_text(json.dumps(dict(meta=meta, runs=self.records, checks=self.checks,
                                                       ratios=self.ratios), indent=1))

    def summary(self):
        print("\n== summary (ms/batch = median over timed iterations; speedup = PyTorch ms / perceiver.cpp ms, "
              "mem = perceiver.cpp peak RSS / PyTorch peak RSS)")
        print_header()
        for r in self.records:
            print_row(r, header=False)
        if self.ratios:
            print("\nratios")
            print(f"{'cfg':<26}{'mode':<6}{'B':>5}{'T':>3}  {'impl':<9}{'vs':<21}{'speedup':>8}{'(min)':>8}{'mem':>7}")
            for q in self.ratios:
                mem = f"{q['peak_mem_ratio']:.2f}" if q["peak_mem_ratio"] else "-"
                print(f"{q['name'][:25]:<26}{q['mode']:<6}{q['batch']:>5}{q['threads']:>3}  {q['impl']:<9}"
                      f"{q['versus']:<21}{q['speedup']:>8.2f}{q['speedup_min']:>8.2f}{mem:>7}")
        mem_rows = [r for r in self.records if r.get("mode") == "train" and
                    (r.get("memory") or (r.get("cpp_json") or {}).get("memory"))]
        if mem_rows:
            print("\ntraining-step memory, MiB. saved: what is held for backward when it starts (PyTorch: the "
                  "storages autograd saves, parameters excluded; perceiver.cpp: live tensors when the loss is "
                  "computed less weights, their bf16 copies, moments and inputs; bf16 w: the bf16 roundings of "
                  "fp32 weights kept with them in mixed precision). peak act.: perceiver.cpp's live tensors at the "
                  "step's peak less weights, gradients, moments and inputs (saved activations, gradients in "
                  "flight, workspace)")
            print(f"{'cfg':<26}{'T':>3}  {'impl':<21}{'weights':>9}{'bf16 w':>8}{'grads':>9}{'AdamW':>9}{'saved':>9}"
                  f"{'peak act.':>11}{'peak RSS':>10}")
            for r in mem_rows:
                m = r.get("memory") or r["cpp_json"]["memory"]
                saved = m.get("saved_activations_mib", m.get("saved_for_backward_mib"))
                peak_act = m.get("activations_and_workspace_mib")
                cell = lambda v, w: f"{v:>{w}.1f}" if v is not None else f"{'-':>{w}}"
                print(f"{r['name'][:25]:<26}{r['threads']:>3}  {r['impl']:<21}{m['weights_mib']:>9.1f}"
                      f"{cell(m.get('weight_bf16_copies_mib'), 8)}{m['gradients_mib']:>9.1f}{m['optimizer_mib']:>9.1f}{cell(saved, 9)}{cell(peak_act, 11)}"
                      f"{(r.get('peak_rss_mib') or 0):>10.0f}")
        sweep = [r for r in self.records if r.get("M")]
        if sweep:
            impls = [i for i in ("cpp", "torch_eager", "torch_compile", "cpp_bf16", "torch_bf16_autocast")
                     if any(r["impl"] == i for r in sweep)]
            print("\ninput-size sweep (config 4, batch 1): ms per sample / peak RSS MiB")
            print(f"{'M':>8}{'T':>3}  " + "".join(f"{i:>26}" for i in impls))
            for t in sorted({r["threads"] for r in sweep}):
                for m in sorted({r["M"] for r in sweep}):
                    cells = []
                    for i in impls:
                        r = next((r for r in sweep if r["M"] == m and r["threads"] == t and r["impl"] == i), None)
                        if r is None or r.get("ms_per_sample") is None:
                            cells.append(_SHORT.get(r["status"], r["status"]) if r else "-")
                        else:
                            cells.append(f"{r['ms_per_sample']:.1f} ms / {r['peak_rss_mib']:.0f} MiB")
                    print(f"{m:>8}{t:>3}  " + "".join(f"{c:>26}" for c in cells))
        bad = [c for c in self.checks if c.get("ok") is False]
        print(f"\nchecks: {len(self.checks)} done, {len(bad)} MISMATCH" + ("" if not bad else ":"))
        for c in bad:
            print("  MISMATCH", json.dumps(c))


def fmt(v, f="{:.1f}"):
    return "-" if v is None else f.format(v)


_header_printed = [False]
_SHORT = {"not available": "n/a", "failed": "FAILED", "timeout": "TIMEOUT", "skipped": "skipped", "ok": "ok"}


def print_header():
    print(f"{'cfg':<26}{'mode':<6}{'B':>5}{'T':>3}  {'impl':<20}{'status':<8}{'med ms':>10}{'min ms':>10}"
          f"{'smp/s':>9}{'GFLOP/s':>9}{'%peak':>7}{'peakMiB':>9}{'loadMiB':>9}  extra")


def print_row(r, header=True):
    if header and not _header_printed[0]:
        print_header()
        _header_printed[0] = True
    extra = ""
    if r.get("compile_s") is not None:
        extra += f"compile {r['compile_s']:.1f}s "
    if r.get("loss_first") is not None:
        extra += f"loss0 {r['loss_first']:.6f} "
    if r.get("optimizer"):
        extra += r["optimizer"] + " "
    if r["status"] != "ok":
        extra += (r.get("error") or "").replace("\n", " | ")[-160:]
    print(f"{r['name'][:25]:<26}{r['mode']:<6}{r['batch']:>5}{r['threads']:>3}  {r['impl']:<20}{_SHORT.get(r['status'], r['status'])[:7]:<8}"
          f"{fmt(r.get('median_ms')):>10}{fmt(r.get('min_ms')):>10}{fmt(r.get('samples_per_s')):>9}"
          f"{fmt(r.get('gflops')):>9}{fmt(r.get('pct_sgemm_peak')):>7}{fmt(r.get('peak_rss_mib'), '{:.0f}'):>9}"
          f"{fmt(r.get('rss_after_load_mib'), '{:.0f}'):>9}  {extra}", flush=True)


def print_check(c):
    if not c:
        return
    flag = {True: "ok", False: "MISMATCH", None: "info"}[c.get("ok")]
    parts = []
    if "logits_max_abs_diff" in c:
        parts.append(f"logits max|diff| {c['logits_max_abs_diff']:.3g} rel {c['logits_rel_diff']:.3g}")
    if "loss_rel_diff" in c:
        parts.append(f"loss0 {c['loss_first']:.7g} vs {c['loss_first_ref']:.7g} rel {c['loss_rel_diff']:.3g}")
    if c.get("note") and "logits_max_abs_diff" in c:
        parts.append("(after warm-up updates)")
    print(f"    check {c['impl']} vs {c['reference']}: {', '.join(parts)}  [{flag}]", flush=True)


# ----------------------------------------------------------------------------------------------
# Self-test: plain models vs transformers, fixtures, Fourier features, FLOP formula
# ----------------------------------------------------------------------------------------------

def selftest():
    import numpy as np
    import torch
    sys.path.insert(0, str(REPO / "bench"))
    import torch_models as tm
    from safetensors.torch import load_file
    torch.set_num_threads(1)
    failures = []

    def check(name, value, tol):
        ok = value <= tol
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {value:.3g} (tol {tol:g})")
        if not ok:
            failures.append(name)

    def rel(a, b):
        return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30))

    # 1. Fourier features vs transformers' generate_fourier_features (bit-exact expected)
    from transformers.models.perceiver import modeling_perceiver as hfm
    print("Fourier features vs transformers")
    for dims, bands, res in [((6, 10), 64, (224, 224)), ((28, 28), 8, (28, 28)), ((1000,), 16, (1000,))]:
        pos = hfm.build_linear_positions(dims).reshape(1, -1, len(dims))
        ref = hfm.generate_fourier_features(pos, bands, res, True, False)[0]
        ours = tm.fourier_features(dims, bands, res)
        check(f"fourier {dims} bands {bands}", float((ref - ours).abs().max()), 0.0)

    # 2. Plain models vs the transformers classes, small configs, both directions strict
    from transformers import PerceiverConfig, PerceiverForImageClassificationFourier, PerceiverForMaskedLM
    cases = [
        ("vision-perceiver-fourier (small)", PerceiverForImageClassificationFourier,
         hf_config("PerceiverForImageClassificationFourier", num_latents=24, d_latents=64, d_model=261, num_blocks=2,
                   num_self_attends_per_block=3, num_self_attention_heads=8, num_cross_attention_heads=1,
                   image_size=224, num_labels=17),
         {"image_hw": (12, 20)}),
        ("language-perceiver (small)", PerceiverForMaskedLM,
         hf_config("PerceiverForMaskedLM", num_latents=16, d_latents=80, d_model=48, num_blocks=1,
                   num_self_attends_per_block=3, num_self_attention_heads=8, num_cross_attention_heads=8,
                   qk_channels=32, v_channels=80, vocab_size=262, max_position_embeddings=96),
         {"length": 96, "fill": 0.7}),
    ]
    for name, cls, conf, kw in cases:
        print(name)
        hf_conf = PerceiverConfig(**{k: v for k, v in conf.items() if k not in ("architectures", "model_type")})
        hf_conf.attention_probs_dropout_prob = 0.0
        torch.manual_seed(0)
        hf = cls(hf_conf).float()
        # non-trivial LayerNorm affine parameters and biases so that every tensor matters
        with torch.no_grad():
            g = torch.Generator().manual_seed(1)
            for n, p in hf.named_parameters():
                if n.endswith(".bias") or "layernorm" in n:
                    p.add_(0.1 * torch.randn(p.shape, generator=g))
        spec = tm.make_spec(conf)
        ours = spec.build_model()
        ours.load_state_dict(hf.state_dict(), strict=True)
        hf.load_state_dict(ours.state_dict(), strict=True)
        check("state_dict names identical", float(set(hf.state_dict()) != set(ours.state_dict())), 0.0)
        arrays = spec.make_inputs(2, seed=5, **kw)
        t = {k: torch.from_numpy(v) for k, v in arrays.items()}
        args, labels = spec.model_args(t)
        hf.eval()
        ours.eval()
        with torch.no_grad():
            if spec.kind == "hf_mlm":
                ref = hf(inputs=t["inputs"], attention_mask=t["attention_mask"]).logits
            else:
                ref = hf(inputs=t["inputs"]).logits
            got = ours(*args)
        check("eval logits rel diff", rel(got, ref), 1e-5)
        hf.train()
        ours.train()
        if spec.kind == "hf_mlm":
            out = hf(inputs=t["inputs"], attention_mask=t["attention_mask"], labels=labels)
        else:
            out = hf(inputs=t["inputs"], labels=labels)
        out.loss.backward()
        loss = spec.loss(ours(*args), labels)
        loss.backward()
        check("train loss rel diff", abs(float(loss.detach()) - float(out.loss.detach())) / abs(float(out.loss.detach())), 1e-5)
        hp = dict(hf.named_parameters())
        worst, worst_name = 0.0, ""
        for n, p in ours.named_parameters():
            if n.endswith("attention.self.key.bias"):
                continue  # mathematically zero gradient (softmax shift invariance): rounding noise only
            r = rel(p.grad, hp[n].grad)
            if r > worst:
                worst, worst_name = r, n
        check(f"max gradient rel diff (all params but key biases; worst {worst_name})", worst, 1e-3)
        # FLOP formula vs torch's FlopCounterMode
        from torch.utils.flop_counter import FlopCounterMode
        fc = FlopCounterMode(display=False)
        with fc:
            ours(*args)
        counted = fc.get_total_flops()
        if spec.kind == "hf_mlm":
            sample_shape = tuple(t["inputs"].shape[1:])
        else:
            sample_shape = tuple(t["inputs"].shape[1:])
        analytic = spec.forward_flops(2, sample_shape)
        check(f"analytic FLOPs {analytic} vs FlopCounterMode {counted} (rel)", abs(analytic - counted) / counted, 1e-9)

    # 3. The Hugging Face fixtures (real HF outputs, PyTorch 1.13): logits and training loss
    fx_root = Path("/work/shared/fixtures/hf")
    if not fx_root.exists():
        fx_root = REPO / "tests" / "data" / "hf"
    for name in ("vision-perceiver-fourier", "language-perceiver"):
        d = fx_root / name
        if not (d / "model.safetensors").exists():
            print(f"{name} fixture: not found, skipped")
            continue
        print(f"{name} fixture ({d})")
        spec = tm.make_spec(json.load(open(d / "config.json")))
        m = spec.build_model()
        m.load_state_dict(load_file(str(d / "model.safetensors")), strict=True)
        inp = load_file(str(d / "inputs.safetensors"))
        out = load_file(str(d / "outputs.safetensors"))
        args, labels = spec.model_args(inp)
        m.eval()
        with torch.no_grad():
            check("logits rel diff vs fixture", rel(m(*args), out["logits"]), 2e-5)
        grads = load_file(str(d / "grads.safetensors"))
        m.train()
        loss = spec.loss(m(*args), labels)
        check("loss rel diff vs fixture", abs(float(loss) - float(grads["loss"])) / abs(float(grads["loss"])), 1e-5)

    # 4. The classifier: FLOP formula vs FlopCounterMode on the default config and a 'query'-head variant
    from torch.utils.flop_counter import FlopCounterMode
    base = json.load(open(REPO / "configs" / "fmnist_default.json"))["model"]
    for conf in ({"model": base},
                 {"model": dict(base, head="query", num_cross_attends=3, share_weights=True, num_blocks=2)},
                 {"model": sweep_model(1024, "1d", True)}):
        spec = tm.make_spec(conf)
        m = spec.build_model().eval()
        arrays = spec.make_inputs(3)
        x = torch.from_numpy(arrays["images"])
        fc = FlopCounterMode(display=False)
        with fc:
            m(x)
        analytic = spec.forward_flops(3, tuple(x.shape[1:]))
        check(f"classifier {conf['model'].get('head', 'average')} x{conf['model'].get('num_cross_attends', 1)} "
              f"FLOPs {analytic} vs FlopCounterMode", abs(analytic - fc.get_total_flops()) / fc.get_total_flops(), 1e-9)
        names = sorted(m.state_dict())
        print(f"    {len(names)} tensors, e.g. {names[0]}, {names[-1]}")

    print("\nselftest:", "FAILED: " + ", ".join(failures) if failures else "all passed")
    return 1 if failures else 0


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------

def int_list(s):
    return [int(x) for x in s.split(",") if x.strip()]


def parse_peaks(s):
    out = {}
    for part in s.split(","):
        t, v = part.split("=")
        out[int(t)] = float(v)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", type=int_list, default=[1, 2, 3, 4], help="comma list of 1,2,3,4,5,6")
    ap.add_argument("--threads", type=int_list, default=[1, 2], help="comma list of thread counts")
    ap.add_argument("--iters", type=int, default=None, help="timed iterations (default per config: 20/3/5/5)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up iterations (default 3 for config 1, else 1)")
    ap.add_argument("--quick", action="store_true", help="1 warm-up + 2 timed iterations, fewer batch sizes")
    ap.add_argument("--small", action="store_true", help="shrunk architectures (harness smoke test)")
    ap.add_argument("--modes", type=lambda s: s.split(","), default=None, help="infer,train (default both)")
    ap.add_argument("--impls", type=lambda s: s.split(","),
                    default=["cpp", "torch_eager", "torch_compile", "cpp_bf16", "torch_bf16_autocast"],
                    help="subset of cpp,torch_eager,torch_compile,cpp_bf16,torch_bf16_autocast")
    ap.add_argument("--bf16", action="store_true", help="add bf16 inference: torch autocast and bench_e2e --precision bf16")
    ap.add_argument("--checkpointing", action="store_true",
                    help="add a perceiver.cpp training run with activation checkpointing (bench_e2e --checkpointing)")
    ap.add_argument("--parallelism", choices=["auto", "batch", "intra_op"], default="auto",
                    help="perceiver.cpp training steps: bench_e2e --parallelism (auto: a batch slice per thread "
                         "where train.parallelism auto would choose it)")
    ap.add_argument("--lm-train", action="store_true", help="config 3: also a training step at batch 1")
    ap.add_argument("--sweep-sizes", type=int_list, default=None,
                    help="config 4 input sizes M (default 1024,4096,16384,65536,200704 for 2d; 200000 last for 1d)")
    ap.add_argument("--sweep-layout", choices=["1d", "2d"], default="2d",
                    help="config 4 input layout: 2d square grids (default) or 1-D inputs of exactly M")
    ap.add_argument("--max-torch-mem-gb", type=float, default=16.0, help="skip PyTorch sweep sizes above this estimate")
    ap.add_argument("--out", default=None, help="write the JSON results here")
    ap.add_argument("--cpp-bin", default=str(REPO / "build" / "bench" / "bench_e2e"))
    ap.add_argument("--workdir", default=None, help="model folders and inputs (default: a new temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (always kept when --workdir is given)")
    ap.add_argument("--reuse", action="store_true", help="reuse model.safetensors already in --workdir")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per implementation run")
    ap.add_argument("--compile-timeout", type=float, default=1800.0, help="extra seconds allowed for torch.compile")
    ap.add_argument("--tol", type=float, default=1e-4, help="fp32 mismatch threshold on max|diff|/max|logit| and loss")
    ap.add_argument("--tol-bf16", type=float, default=5e-2, help="bf16 mismatch threshold")
    ap.add_argument("--sgemm-peak-gflops", type=parse_peaks, default=None,
                    help="measured sgemm peak per thread count, e.g. 1=200,2=394 (default, docs perf_notes)")
    ap.add_argument("--warm-compile-cache", action="store_true",
                    help="let torch.compile reuse its default on-disk cache (default: a fresh cache per run, cold compile)")
    ap.add_argument("--tuned-malloc", action="store_true",
                    help="run PyTorch with glibc malloc told to keep freed memory (MALLOC_MMAP_MAX_=0 ...)")
    ap.add_argument("--selftest", action="store_true", help="validate the plain models against transformers and exit")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        child_main(args.child)
        # Skip interpreter teardown: with torch loaded it raises the RSS by ~100 MiB after the work is done,
        # which would otherwise show up in the wait4() peak.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    if args.selftest:
        return selftest()
    global _SPAWNER
    _SPAWNER = Spawner()  # before the harness imports torch (see _SPAWNER_CODE)

    args.peak_1, args.peak_2 = 200.0, 394.0
    args.sweep_sizes_given = args.sweep_sizes is not None
    if args.sweep_sizes is None:
        args.sweep_sizes = [1024, 4096, 16384, 65536, 200704 if args.sweep_layout == "2d" else 200000]
    if args.sweep_layout == "2d":
        for m in args.sweep_sizes:
            if int(round(m ** 0.5)) ** 2 != m:
                ap.error(f"--sweep-layout 2d needs square sizes, {m} is not")
    if not args.bf16:
        args.impls = [i for i in args.impls if i not in ("cpp_bf16", "torch_bf16_autocast")]
    sys.path.insert(0, str(REPO / "bench"))
    plan = build_plan(args)
    h = Harness(args)
    print(f"torch_compare: work dir {h.workdir}; bench_e2e {'found' if h.cpp_available else 'NOT found'} at {h.cpp}; "
          f"threads {args.threads}; impls {args.impls}")
    try:
        h.run(plan)
    finally:
        _SPAWNER.close()
        if not args.workdir and not args.keep:
            shutil.rmtree(h.workdir, ignore_errors=True)
    if args.out:
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    ensure_venv()
    sys.exit(main())
