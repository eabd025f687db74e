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
                   k = 1, 2, 3 by default. At a document's ends the side that is cut uses the
                   bytes it has (counts of 2 bytes left and none right at a document's last byte).
Reports masked-byte accuracy (argmax) and bits per byte for each.

--same-task scores the count models on the masked LM's own task instead: the run's held-out
sequences (its seq_len and test_limit, [CLS] + seq_len - 2 bytes + [SEP], cut from the held-out
documents in order), ~mask_prob of each sequence's bytes chosen (at least one), 80% of those
replaced by [MASK], 10% by a random byte, 10% kept, as the trainer masks them (same distribution,
a different random stream). Each chosen byte is predicted from its corrupted context inside its
sequence: a context stops at the sequence's ends and at a [MASK] (the counts back off to the
orders that fit); a random or kept byte is read as it is, as the model reads it.
Standard library only.
"""
import argparse
import gzip
import json
import math
import random
from collections import Counter, defaultdict


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


class Bidirectional:
    """Witten-Bell interpolated P(x | a bytes left, b bytes right), a, b <= k, order 0 = unigram.

    With the whole context at hand the chain is (1, 1), (2, 2), ..., (k, k); where a context is cut
    (a sequence's end, a [MASK]) at A bytes left and B right, it is (min(j, A), min(j, B)) for
    j = 1..k, so one side's bytes still count when the other side has none."""

    def __init__(self, docs, k):
        self.k = k
        self.docs = docs
        self.unigram = Counter()
        for d in docs:
            self.unigram.update(d)
        self.total = sum(self.unigram.values())
        self.tables = {}  # (a, b) -> {left a bytes + right b bytes: Counter of x}, built when first needed

    def table(self, a, b):
        if (a, b) not in self.tables:
            t = defaultdict(Counter)
            for d in self.docs:
                for i in range(a, len(d) - b):
                    t[d[i - a:i] + d[i + 1:i + 1 + b]][d[i]] += 1
            self.tables[(a, b)] = t
        return self.tables[(a, b)]

    def distribution(self, doc, i, lo=0, hi=None):
        """P(doc[i] | context) from doc[lo:hi] (a context does not reach past lo or hi)."""
        hi = len(doc) if hi is None else hi
        p = [(self.unigram[x] + 1) / (self.total + 256) for x in range(256)]
        have_left, have_right = i - lo, hi - 1 - i
        previous = (0, 0)
        for j in range(1, self.k + 1):
            a, b = min(j, have_left), min(j, have_right)
            if (a, b) == previous:
                break
            previous = (a, b)
            c = self.table(a, b).get(doc[i - a:i] + doc[i + 1:i + 1 + b])
            if not c:
                break
            n, types = sum(c.values()), len(c)
            lam = n / (n + types)
            p = [lam * c.get(x, 0) / n + (1 - lam) * p[x] for x in range(256)]
        return p


MASK = None  # a [MASK] in a corrupted sequence (bytes are 0..255)


def masked_task(split, test, mask_prob, seed):
    """[(corrupted sequence, position, true byte)] for the run's held-out sequences."""
    content = split["seq_len"] - 2
    seqs = [d[s:s + content] for d in test for s in range(0, len(d), content)]
    if split.get("test_limit"):
        seqs = seqs[: split["test_limit"]]
    rng = random.Random(seed)
    task = []
    for seq in seqs:
        chosen = [t for t in range(len(seq)) if rng.random() < mask_prob] or [rng.randrange(len(seq))]
        x = list(seq)
        for t in chosen:
            r = rng.random()
            x[t] = MASK if r < 0.8 else (rng.randrange(256) if r < 0.9 else seq[t])
        task += [(x, t, seq[t]) for t in chosen]
    return task


def score_same_task(name, m, task):
    correct, bits = 0, 0.0
    for x, t, y in task:
        # the context is the longest span around t without a [MASK] (t itself excluded)
        lo = t
        while lo > 0 and x[lo - 1] is not MASK:
            lo -= 1
        hi = t + 1
        while hi < len(x) and x[hi] is not MASK:
            hi += 1
        doc = bytes(b if b is not MASK else 0 for b in x)
        p = m.distribution(doc, t, lo, hi)
        correct += max(range(256), key=p.__getitem__) == y
        bits -= math.log2(p[y])
    print(f"{name:18s} masked-byte accuracy {correct / len(task):.4f}, {bits / len(task):.3f} bits per byte")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("split")
    ap.add_argument("--orders", type=int, nargs="*", default=[1, 2, 3])
    ap.add_argument("--same-task", action="store_true", help="score the masked LM's task (see above)")
    ap.add_argument("--mask-prob", type=float, default=0.15, help="with --same-task: the run's data.mask_prob")
    ap.add_argument("--seed", type=int, default=0, help="with --same-task: the masking's random stream")
    ap.add_argument("--max-test-bytes", type=int, default=200000, help="predict at most this many held-out bytes")
    a = ap.parse_args()
    split = json.load(open(a.split))
    if split.get("train_limit") or split.get("test_limit"):
        print(f"note: the run used train_limit {split.get('train_limit')} / test_limit {split.get('test_limit')} "
              "sequences; these baselines count and score whole documents")
    train = [read(p) for p in split["train"]]
    test = [read(p) for p in split["test"]]
    models = [("unigram", Bidirectional(train, 0))] + [(f"bidirectional {k}+{k}", Bidirectional(train, k))
                                                     for k in a.orders]
    if a.same_task:
        task = masked_task(split, test, a.mask_prob, a.seed)
        print(f"{len(train)} training documents ({sum(map(len, train))} bytes), {len(test)} held-out documents; "
              f"the masked LM's task: {len(task)} masked bytes of the run's held-out sequences")
        for name, m in models:
            score_same_task(name, m, task)
        return
    positions = [(d, i) for d in test for i in range(len(d))][: a.max_test_bytes]
    print(f"{len(train)} training documents ({sum(map(len, train))} bytes), {len(test)} held-out documents; "
          f"predicting {len(positions)} held-out bytes")
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
