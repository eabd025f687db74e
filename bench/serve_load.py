#!/usr/bin/python3
"""Load test of `perceiver serve` on loopback against the same model served from Python
(transformers + a minimal threading HTTP server, in the PyPI venv build/bench-venv).

The model: an HF PerceiverForImageClassificationLearned (seeded random weights written by
`bench_e2e --save-init`; default 64 x 64 RGB, 128 latents x 256, 4 self-attends), requests
through the generic endpoint POST /v1/run: a safetensors body {"inputs": (1, 3, H, W)} -> the
logits as safetensors, on both servers. A bounded client (threads with keep-alive connections,
each sending its share of requests one after another) measures throughput and p50/p99 latency at
each concurrency, for perceiver serve with batching (--max-batch 8) and without (--max-batch 1),
in fp32 and with --precision bf16, and for the Python server (fp32). During every perceiver serve run one more client sends malformed and
oversized requests (bad safetensors, a body over --max-body-mib, a wrong input name, NaN); the
script checks they are all answered 4xx, that the server still answers, and reports its RSS
after a warm-up and after the load.

Usage: /usr/bin/python3 bench/serve_load.py [--clients 1,8,32] [--requests 256] [--threads 2]
       [--no-python] [--small]
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import safetensors_bytes  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
VENV_PY = os.path.join(BUILD, "bench-venv", "bin", "python")

PY_SERVER = r'''
import io, json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import torch
from safetensors.torch import load, save
from transformers import PerceiverForImageClassificationLearned
torch.set_num_threads(int(sys.argv[2]))
model = PerceiverForImageClassificationLearned.from_pretrained(sys.argv[1]).eval()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as perceiver serve (TCP_NODELAY), else ~40 ms per answer
    def log_message(self, *a): pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            inputs = load(body)
            with torch.no_grad():
                logits = model(inputs=inputs["inputs"]).logits
            out, code = save({"logits": logits.contiguous()}), 200
        except Exception as e:
            out, code = json.dumps({"error": str(e)}).encode(), 400
        self.send_response(code)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"python serving on http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
'''


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start(cmd, env=None):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        sys.exit(f"server did not start: {' '.join(cmd)}\n{line}{proc.stderr.read()}")
    host, port = line.split("http://")[1].split()[0].rstrip(")").split(":")
    return proc, host, int(port)


def load(host, port, bodies, clients, total):
    """`clients` threads, each with one keep-alive connection, send `total` requests in all."""
    latencies, errors = [], []
    lock = threading.Lock()

    def client(k):
        conn = http.client.HTTPConnection(host, port, timeout=600)
        for i in range(k, total, clients):
            body = bodies[i % len(bodies)]
            t = time.perf_counter()
            try:
                conn.request("POST", "/v1/run", body, {"Content-Type": "application/octet-stream"})
                r = conn.getresponse()
                status, data = r.status, r.read()
            except (ConnectionError, http.client.HTTPException) as e:  # counted, then a new connection
                status, data = type(e).__name__, b""
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=600)
            dt = time.perf_counter() - t
            with lock:
                (latencies if status == 200 else errors).append(dt if status == 200 else (status, data[:200]))
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = sorted(latencies)
    return {"clients": clients, "requests": total, "ok": len(lat), "failed": len(errors), "errors": errors[:3],
            "throughput_rps": round(len(lat) / wall, 2),
            "p50_ms": round(1000 * lat[len(lat) // 2], 2) if lat else None,
            "p99_ms": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2) if lat else None}


def abuse(host, port, max_body, stop, counts):
    """Malformed and oversized requests until stop is set; counts answers by status."""
    bad = [b"\x05" + b"\x00" * 7 + b"{bad}", b"", b"x" * (max_body + 1024),
           safetensors_bytes({"wrong_name": np.zeros((1, 3), np.float32)}),
           safetensors_bytes({"inputs": np.full((1, 3, 8, 8), np.nan, np.float32)})]
    i = 0
    while not stop.is_set():
        conn = http.client.HTTPConnection(host, port, timeout=60)
        try:
            conn.request("POST", "/v1/run", bad[i % len(bad)], {"Content-Type": "application/octet-stream"})
            status = conn.getresponse().status
        except (ConnectionError, http.client.HTTPException) as e:  # the server may close a connection it refused
            status = type(e).__name__
        conn.close()
        counts[status] = counts.get(status, 0) + 1
        i += 1
        time.sleep(0.02)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default="1,8,32,8", help="concurrent clients of each run (a repeat shows whether "
                    "memory keeps growing)")
    ap.add_argument("--requests", type=int, default=256, help="requests per run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-python", action="store_true", help="skip the transformers server")
    ap.add_argument("--small", action="store_true", help="a tiny model (a quick check of the script)")
    args = ap.parse_args()
    e2e, cli = os.path.join(BUILD, "bench", "bench_e2e"), os.path.join(BUILD, "perceiver")
    side = 16 if args.small else 64
    config = {"architectures": ["PerceiverForImageClassificationLearned"], "model_type": "perceiver",
              "image_size": side, "num_latents": 16 if args.small else 128, "d_latents": 32 if args.small else 256,
              "d_model": 64 if args.small else 256, "num_blocks": 1, "num_self_attends_per_block": 1 if args.small else 4,
              "num_self_attention_heads": 4, "num_cross_attention_heads": 1, "num_labels": 1000}
    clients = [int(c) for c in args.clients.split(",")]
    rng = np.random.default_rng(0)
    bodies = [safetensors_bytes({"inputs": rng.standard_normal((1, 3, side, side)).astype(np.float32)}) for _ in range(16)]
    max_body_mib = 1.0
    results = {"config": config, "threads": args.threads, "requests_per_run": args.requests, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "model")
        os.makedirs(model)
        with open(os.path.join(model, "config.json"), "w") as f:
            json.dump(config, f)
        subprocess.run([e2e, "--model", model, "--save-init", os.path.join(model, "model.safetensors")], check=True,
                       capture_output=True)
        for max_batch, precision in ((8, "f32"), (1, "f32"), (8, "bf16"), (1, "bf16")):
            proc, host, port = start([cli, "serve", "--model", model, "--port", "0", "--threads", str(args.threads),
                                      "--max-batch", str(max_batch), "--batch-wait-ms", "2", "--max-queue", "256",
                                      "--max-body-mib", str(max_body_mib), "--precision", precision])
            load(host, port, bodies, 8, 64)  # warm-up
            rss_warm = rss_mib(proc.pid)
            stop, counts = threading.Event(), {}
            abuser = threading.Thread(target=abuse, args=(host, port, int(max_body_mib * 1048576), stop, counts))
            abuser.start()
            for c in clients:
                r = load(host, port, bodies, c, args.requests)
                r.update(server="perceiver serve", max_batch=max_batch, precision=precision, rss_mib=round(rss_mib(proc.pid), 1))
                results["runs"].append(r)
                print(json.dumps(r), flush=True)
            stop.set()
            abuser.join()
            alive = proc.poll() is None
            conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request("GET", "/metrics")
            metrics = conn.getresponse().read().decode()
            rss_end = rss_mib(proc.pid)
            proc.terminate()
            code = proc.wait(timeout=120)
            batch_count = float(metrics.split("perceiver_batch_size_count ")[1].split()[0])
            batch_sum = float(metrics.split("perceiver_batch_size_sum ")[1].split()[0])
            summary = {"server": "perceiver serve", "max_batch": max_batch, "precision": precision,
                       "bad_requests_by_status": counts,
                       "alive_after_load": alive, "exit_code_after_sigterm": code, "rss_after_warmup_mib": round(rss_warm, 1),
                       "rss_after_load_mib": round(rss_end, 1), "mean_batch": round(batch_sum / max(batch_count, 1), 2)}
            results["runs"].append(summary)
            print(json.dumps(summary), flush=True)
        if not args.no_python:
            if not os.path.exists(VENV_PY):
                sys.exit(f"{VENV_PY} is missing: run bench/torch_compare.py once to create it, or pass --no-python")
            proc, host, port = start([VENV_PY, "-c", PY_SERVER, model, str(args.threads)])
            load(host, port, bodies, 8, 64)  # warm-up
            for c in clients:
                r = load(host, port, bodies, c, args.requests)
                r.update(server="python transformers", rss_mib=round(rss_mib(proc.pid), 1))
                results["runs"].append(r)
                print(json.dumps(r), flush=True)
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
