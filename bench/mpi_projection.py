#!/usr/bin/env python3
"""Expected data-parallel scaling on N machines, from a step time and gradient size measured here.

    /usr/bin/python3 bench/mpi_projection.py --name "FMNIST default" --step-ms 50 --backward-share 0.6 \\
        --params 584906 --buckets 1

A paper model of what perceiver.cpp does (train/distributed.h), one process per machine, the
per-process batch fixed (the global batch grows with N):
  compute      step_ms, of which backward_share runs backward (gradient buckets go out during it);
  gradients    G = 4 bytes x params (fp32) in `buckets` buckets; each bucket is summed by
               point-to-point reduce-scatter + all-gather: every process sends and receives
               2 G (N - 1) / N bytes and 2 (N - 1) messages per bucket;
  small sums   3 all-gathers of a few bytes per step (stop flag, loss, which gradients exist):
               2 (N - 1) messages each;
  network      bandwidth B (10 or 100 Gb/s) and a per-message latency alpha (default 20 us, TCP).
Step time without overlap = compute + comm; with overlap = compute + max(0, comm - backward),
taking the measured overlap as complete (an upper bound on what overlap hides). Efficiency =
compute / step time. The point where communication dominates: comm > backward time.
Standard library only.
"""
import argparse


def comm_seconds(n, grad_bytes, buckets, bandwidth_gbps, alpha_s, grad_bits=32):
    if n == 1:
        return 0.0
    g = grad_bytes * grad_bits / 32
    volume = 2 * g * (n - 1) / n
    messages = 2 * (n - 1) * buckets + 3 * 2 * (n - 1)
    return volume * 8 / (bandwidth_gbps * 1e9) + messages * alpha_s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--step-ms", type=float, required=True, help="measured step time of one process")
    ap.add_argument("--backward-share", type=float, default=0.6, help="share of the step spent in backward")
    ap.add_argument("--params", type=int, required=True)
    ap.add_argument("--buckets", type=int, default=1)
    ap.add_argument("--alpha-us", type=float, default=20.0)
    ap.add_argument("--machines", type=int, nargs="*", default=[8, 32, 128])
    a = ap.parse_args()
    compute = a.step_ms / 1000
    backward = compute * a.backward_share
    grad_bytes = 4 * a.params
    print(f"{a.name}: step {a.step_ms:.0f} ms per process, gradients {grad_bytes / 2**20:.1f} MiB in {a.buckets} "
          f"bucket(s), latency {a.alpha_us:.0f} us")
    print("| machines | network | gradients | comm ms / step | efficiency, no overlap | efficiency, overlap |")
    print("|---|---|---|---|---|---|")
    for n in a.machines:
        for gbps in (10, 100):
            for bits in (32, 16):
                c = comm_seconds(n, grad_bytes, a.buckets, gbps, a.alpha_us * 1e-6, bits)
                no = compute / (compute + c)
                ov = compute / (compute + max(0.0, c - backward))
                print(f"| {n} | {gbps} Gb/s | {'fp32' if bits == 32 else 'bf16'} | {1000 * c:.1f} | {100 * no:.0f}% | "
                      f"{100 * ov:.0f}% |")
    # where communication outgrows backward (fp32, 10 Gb/s), searching N
    for gbps in (10, 100):
        n = 2
        while n < 1 << 20 and comm_seconds(n, grad_bytes, a.buckets, gbps, a.alpha_us * 1e-6) <= backward:
            n *= 2
        print(f"communication exceeds backward ({1000 * backward:.0f} ms) at {gbps} Gb/s from about {n} machines"
              if n < 1 << 20 else f"communication stays under backward at {gbps} Gb/s")


if __name__ == "__main__":
    main()
