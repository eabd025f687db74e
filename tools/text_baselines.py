#!/usr/bin/env python3
"""Count baselines for byte-level masked-LM runs, on the run's own split of whole documents.

    perceiver train --config RUN.json --out OUT          # writes OUT/data_split.json
    /usr/bin/python3 tools/text_baselines.py OUT/data_split.json [--orders 1 2 3]

Counts come from the training documents; every byte of the held-out documents is predicted from
its clean context (no other byte masked: easier than the masked LM's task, where ~15% of the
context is masked too, so beating these numbers is a conservative claim):
  unigram          P(x) by byte frequency (add-one);
  bidirectional k  P(x | k bytes left, k bytes right) from counts of (left, x, right), backed off
                   to order k - 1 (and finally to the unigram) with Witten-Bell interpolation;
                   k = 1, 2, 3 by default.
Reports masked-byte accuracy (argmax) and bits per byte for each. Standard library only.
"""
import argparse
import gzip
import json
import math
from collections import Counter, defaultdict


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


class Bidirectional:
    """Witten-Bell interpolated P(x | l, r) over orders 0..k (order 0 = unigram)."""

    def __init__(self, docs, k):
        self.k = k
        self.unigram = Counter()
        for d in docs:
            self.unigram.update(d)
        self.total = sum(self.unigram.values())
        self.tables = []  # per order j >= 1: context (left j, right j) -> Counter of x
        for j in range(1, k + 1):
            t = defaultdict(Counter)
            for d in docs:
                for i in range(j, len(d) - j):
                    t[(d[i - j:i], d[i + 1:i + 1 + j])][d[i]] += 1
            self.tables.append(t)

    def distribution(self, doc, i):
        p = [(self.unigram[x] + 1) / (self.total + 256) for x in range(256)]
        for j in range(1, self.k + 1):
            if i - j < 0 or i + j >= len(doc):
                break
            c = self.tables[j - 1].get((doc[i - j:i], doc[i + 1:i + 1 + j]))
            if not c:
                break
            n, types = sum(c.values()), len(c)
            lam = n / (n + types)
            p = [lam * c.get(x, 0) / n + (1 - lam) * p[x] for x in range(256)]
        return p


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("split")
    ap.add_argument("--orders", type=int, nargs="*", default=[1, 2, 3])
    ap.add_argument("--max-test-bytes", type=int, default=200000, help="predict at most this many held-out bytes")
    a = ap.parse_args()
    split = json.load(open(a.split))
    if split.get("train_limit") or split.get("test_limit"):
        print(f"note: the run used train_limit {split.get('train_limit')} / test_limit {split.get('test_limit')} "
              "sequences; these baselines count and score whole documents")
    train = [read(p) for p in split["train"]]
    test = [read(p) for p in split["test"]]
    positions = [(d, i) for d in test for i in range(len(d))][: a.max_test_bytes]
    print(f"{len(train)} training documents ({sum(map(len, train))} bytes), {len(test)} held-out documents; "
          f"predicting {len(positions)} held-out bytes")
    models = [("unigram", Bidirectional(train, 0))] + [(f"bidirectional {k}+{k}", Bidirectional(train, k))
                                                     for k in a.orders]
    for name, m in models:
        correct, bits = 0, 0.0
        for d, i in positions:
            p = m.distribution(d, i)
            x = d[i]
            correct += max(range(256), key=p.__getitem__) == x
            bits -= math.log2(p[x])
        print(f"{name:18s} masked-byte accuracy {correct / len(positions):.4f}, {bits / len(positions):.3f} bits per byte")


if __name__ == "__main__":
    main()
