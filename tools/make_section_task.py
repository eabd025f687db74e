#!/usr/bin/env python3
"""A sequence-classification task from the masked LM's own corpus: which section of the Python
documentation a paragraph comes from (library, c-api, whatsnew, howto, reference, tutorial).

Training paragraphs come from the masked LM's training documents, test paragraphs from its
held-out documents (OUT/data_split.json of the masked-LM run; its paths are relative to where
that run was started), so neither the pre-training nor the fine-tuning has seen a test paragraph
(paragraphs that also occur in a training document are dropped from the training side). Paragraphs are blocks separated by blank lines, at
least --min-bytes long, cut to --max-bytes; paragraphs are capped per class (balanced) in both sets.

  /usr/bin/python3 tools/make_section_task.py MLM_RUN/data_split.json OUT_DIR [--per-class 600]
writes OUT_DIR/train.jsonl and OUT_DIR/test.jsonl ({"text": ..., "label": ...} lines) and prints
the class counts and the majority-class share of the test set.
"""
import argparse
import collections
import gzip
import json
import os
import random

SECTIONS = ["library", "c-api", "whatsnew", "howto", "reference", "tutorial"]


def section(path):
    parts = path.replace("\\", "/").split("/")
    for i, p in enumerate(parts[:-1]):
        if p == "_sources" and parts[i + 1] in SECTIONS:
            return parts[i + 1]
    return None


def paragraphs(path, min_bytes, max_bytes):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":  # gzip content, whatever the name (as the masked LM reads it)
        data = gzip.decompress(data)
    text = data.decode("utf-8", errors="replace")
    for block in text.replace("\r\n", "\n").split("\n\n"):
        block = " ".join(block.split())
        if len(block.encode("utf-8")) >= min_bytes:
            yield block.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


def collect(files, args):
    out = []
    for f in files:
        s = section(f)
        if s:
            out += [(p, s) for p in paragraphs(f, args.min_bytes, args.max_bytes)]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("split", help="data_split.json of the masked-LM run")
    ap.add_argument("out", help="output directory")
    ap.add_argument("--per-class", type=int, default=600, help="training paragraphs per class (at most)")
    ap.add_argument("--test-per-class", type=int, default=150, help="test paragraphs per class (at most; 0: all)")
    ap.add_argument("--min-bytes", type=int, default=80)
    ap.add_argument("--max-bytes", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    split = json.load(open(args.split))
    rng = random.Random(args.seed)
    train = collect(split["train"], args)
    test = collect(split["test"], args)
    # a paragraph repeated in a training and a test document (boilerplate) counts as seen: drop it
    # from the training side, and keep each test paragraph once
    test = list(dict.fromkeys(test))
    test_texts = {p for p, _ in test}
    train = [(p, s) for p, s in dict.fromkeys(train) if p not in test_texts]
    def balanced(rows, cap):
        by_class = collections.defaultdict(list)
        for p, s in rows:
            by_class[s].append(p)
        out = []
        for s in SECTIONS:
            ps = by_class.get(s, [])
            rng.shuffle(ps)
            out += [(p, s) for p in (ps[:cap] if cap > 0 else ps)]
        rng.shuffle(out)
        return out

    train = balanced(train, args.per_class)
    test = balanced(test, args.test_per_class)
    os.makedirs(args.out, exist_ok=True)
    for name, rows in (("train", train), ("test", test)):
        with open(os.path.join(args.out, name + ".jsonl"), "w") as f:
            for p, s in rows:
                f.write(json.dumps({"text": p, "label": s}) + "\n")
    tc = collections.Counter(s for _, s in train)
    ec = collections.Counter(s for _, s in test)
    print("train:", dict(tc), "total", len(train))
    print("test:", dict(ec), "total", len(test))
    if test:
        print("majority-class share of the test set: %.3f (%s)" % (ec.most_common(1)[0][1] / len(test), ec.most_common(1)[0][0]))


if __name__ == "__main__":
    main()
