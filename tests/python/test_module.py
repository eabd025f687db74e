"""Tests of the `perceiver` Python module (python/perceiver_module.cpp), run by ctest under
Debian's /usr/bin/python3 with PYTHONPATH at the built module. The reference numbers are the
fixtures' (tests/data/hf: Hugging Face outputs) and the `perceiver` program's on the same files."""

import json
import os
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import numpy as np

import perceiver

SOURCE = os.environ.get("PERCEIVER_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = os.environ.get("PERCEIVER_CLI", os.path.join(SOURCE, "build", "perceiver"))
HF = os.path.join(SOURCE, "tests", "data", "hf")
IMAGES = os.path.join(HF, "preprocessing", "images")


def load_safetensors(path):
    """A safetensors file as a dict of arrays (the format: u64 header size, JSON header, data)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    types = {"F32": np.float32, "I32": np.int32, "I64": np.int64}
    out = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + b:8 + n + e], dtype=types[v["dtype"]]).reshape(v["shape"])
    return out


def read_flo(path):
    with open(path, "rb") as f:
        magic, w, h = struct.unpack("<fii", f.read(12))
        return np.frombuffer(f.read(), dtype=np.float32).reshape(h, w, 2)


def cli(*args):
    r = subprocess.run([CLI, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"perceiver {' '.join(args)} failed: {r.stdout}{r.stderr}")
    return r.stdout


def assert_close(test, got, want, rel):
    """max |got - want| <= rel * max |want| (printing the worst element otherwise)."""
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    worst = np.unravel_index(np.argmax(diff), diff.shape)
    test.assertLessEqual(diff.max(), rel * np.abs(want).max(),
                         f"worst element {worst}: got {got[worst]}, want {want[worst]}")


class ModelCalls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = os.path.join(HF, "language-perceiver")
        cls.model = perceiver.load(cls.dir)
        cls.inputs = load_safetensors(os.path.join(cls.dir, "inputs.safetensors"))
        cls.outputs = load_safetensors(os.path.join(cls.dir, "outputs.safetensors"))

    def call(self, **kw):
        return self.model({"inputs": self.inputs["inputs"], "attention_mask": self.inputs["attention_mask"]}, **kw)

    def test_logits_and_trace_match_transformers(self):
        self.assertEqual(self.model.architecture, "PerceiverForMaskedLM")
        self.assertEqual(self.model.num_parameters, 89190)
        out = self.call()
        self.assertEqual(list(out), ["logits"])
        self.assertEqual(out["logits"].dtype, np.float32)
        assert_close(self, out["logits"], self.outputs["logits"], 1e-5)
        traced = self.call(trace=True)
        for name in ("latents_final", "decoder_output", "encoder_input"):
            assert_close(self, traced[name], self.outputs[name], 1e-5)

    def test_arrays_are_shared_not_copied(self):
        a = np.arange(12, dtype=np.float32).reshape(3, 4)
        b = perceiver._roundtrip(a)
        self.assertTrue(np.shares_memory(a, b))  # float32, C-contiguous: the same buffer both ways
        i = np.arange(6, dtype=np.int32)
        self.assertTrue(np.shares_memory(i, perceiver._roundtrip(i)))
        del a  # the tensor keeps the array alive: b stays valid
        np.testing.assert_array_equal(b, np.arange(12, dtype=np.float32).reshape(3, 4))
        # other types and layouts are converted once
        d = np.arange(6, dtype=np.float64).reshape(2, 3)
        c = perceiver._roundtrip(d)
        self.assertEqual(c.dtype, np.float32)
        self.assertFalse(np.shares_memory(c, d))
        t = perceiver._roundtrip(np.arange(12, dtype=np.float32).reshape(3, 4).T)
        np.testing.assert_array_equal(t, np.arange(12, dtype=np.float32).reshape(3, 4).T)
        self.assertTrue(t.flags["C_CONTIGUOUS"])
        np.testing.assert_array_equal(perceiver._roundtrip(np.array([1, -2], dtype=np.int64)), [1, -2])

    def test_state_dict_arrays_are_the_weights(self):
        m = perceiver.load(self.dir)
        sd = m.state_dict()
        self.assertIn("perceiver.embeddings.latents", sd)
        before = m({"inputs": self.inputs["inputs"]})["logits"]
        sd["perceiver.embeddings.latents"][:] = 0  # writes the model's own tensor
        after = m({"inputs": self.inputs["inputs"]})["logits"]
        self.assertGreater(np.abs(after - before).max(), 1e-3)

    def test_errors_are_perceiver_errors_with_the_message(self):
        self.assertTrue(issubclass(perceiver.Error, ValueError))
        with self.assertRaisesRegex(perceiver.Error, "missing input 'inputs'"):
            self.model({"attention_mask": self.inputs["attention_mask"]})
        with self.assertRaisesRegex(perceiver.Error, "dtype complex128 is not supported"):
            self.model({"inputs": np.zeros((1, 4), dtype=np.complex128)})
        with self.assertRaisesRegex(perceiver.Error, "must fit int32"):
            self.model({"inputs": np.array([[2 ** 40]], dtype=np.int64)})
        with self.assertRaisesRegex(perceiver.Error, "input 'inputs': dtype object is not supported"):
            self.model({"inputs": object()})
        with self.assertRaisesRegex(perceiver.Error, "input names must be strings"):
            self.model({1: self.inputs["inputs"]})
        with self.assertRaisesRegex(perceiver.Error, "no such file or directory"):
            perceiver.load("/nonexistent/model")
        with self.assertRaisesRegex(perceiver.Error, "expected a PerceiverForOpticalFlow model, got a PerceiverForMaskedLM"):
            perceiver.flow(self.model, np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.uint8))
        with self.assertRaisesRegex(perceiver.Error, "precision"):
            self.model.precision = "fp8"

    def test_nonfinite_inputs_are_refused_unless_allowed(self):
        m = perceiver.load(os.path.join(HF, "vision-perceiver-learned"))
        x = load_safetensors(os.path.join(HF, "vision-perceiver-learned", "inputs.safetensors"))["inputs"].copy()
        x[0, 0, 0, 0] = np.nan
        with self.assertRaisesRegex(perceiver.Error, "input 'inputs' holds 1 non-finite value.*allow_nonfinite=True"):
            m({"inputs": x})
        m.allow_nonfinite = True
        self.assertTrue(np.isnan(m({"inputs": x})["logits"]).any())

    def test_bf16_and_back(self):
        m = perceiver.load(self.dir)
        f32 = m({"inputs": self.inputs["inputs"]})["logits"]
        m.precision = "bf16"
        self.assertEqual(m.precision, "bf16")
        bf16 = m({"inputs": self.inputs["inputs"]})["logits"]
        assert_close(self, bf16, f32, 0.05)
        self.assertGreater(np.abs(bf16 - f32).max(), 0)  # really bf16
        m.precision = "f32"  # the fp32 weights were kept
        np.testing.assert_array_equal(m({"inputs": self.inputs["inputs"]})["logits"], f32)
        lean = perceiver.load(self.dir, precision="bf16")
        np.testing.assert_array_equal(lean({"inputs": self.inputs["inputs"]})["logits"], bf16)

    def test_other_threads_run_while_cpp_computes(self):
        # If a call held the GIL, this thread could not run during it: the longest pause between
        # its loop turns would be at least one call. One compute thread leaves it a core.
        before = perceiver.get_num_threads()
        perceiver.set_num_threads(1)
        try:
            ids = np.tile(self.inputs["inputs"][:1], (16, 1))
            while True:  # calls of at least 0.1 s each (the faster of two)
                took = []
                for _ in range(2):
                    t0 = time.perf_counter()
                    self.model({"inputs": ids})
                    took.append(time.perf_counter() - t0)
                if min(took) >= 0.1 or len(ids) >= 8192:
                    break
                ids = np.concatenate([ids, ids])
            durations = []
            done = threading.Event()

            def work():
                for _ in range(4):
                    t = time.perf_counter()
                    self.model({"inputs": ids})
                    durations.append(time.perf_counter() - t)
                done.set()

            worker = threading.Thread(target=work)
            last = time.perf_counter()
            longest = 0.0
            worker.start()
            while not done.is_set():
                now = time.perf_counter()
                longest = max(longest, now - last)
                last = now
                time.sleep(0.001)
            worker.join()
        finally:
            perceiver.set_num_threads(before)
        self.assertLess(longest, 0.5 * sorted(durations)[1], f"this thread paused {longest:.3f}s; calls took {durations}")

    def test_threads(self):
        before = perceiver.get_num_threads()
        perceiver.set_num_threads(1)
        self.assertEqual(perceiver.get_num_threads(), 1)
        one = self.call()["logits"]
        perceiver.set_num_threads(before)
        assert_close(self, one, self.call()["logits"], 1e-6)
        # the interpreter's floating-point mode is its own: denormals survive in NumPy
        self.assertGreater(np.float32(1e-39) * np.float32(1.0), 0)


class TaskHelpers(unittest.TestCase):
    def test_fill_mask_matches_the_command(self):
        d = os.path.join(HF, "language-perceiver")
        m = perceiver.load(d)
        text = "This is an incomplete sentence where some words are missing."
        want = cli("fill-mask", "--model", d, text, "--mask", "51:60", "--top", "3").splitlines()
        got = perceiver.fill_mask(m, text, spans=[(51, 60)], top=3)
        self.assertEqual(got["text"], want[0])
        self.assertEqual(got["positions"], list(range(52, 61)))
        for k, line in enumerate(want[1:]):
            shown = " ".join(f"'{t['token']}' {t['probability']:.4f}" for t in got["top"][k])
            self.assertEqual(line, f"token {got['positions'][k]}: {shown}")
        with self.assertRaisesRegex(perceiver.Error, "nothing to fill"):
            perceiver.fill_mask(m, "no mask here")
        with self.assertRaisesRegex(perceiver.Error, "cuts through the special token"):
            perceiver.fill_mask(m, "a[SEP]b", spans=[(0, 3)])

    def test_classify_matches_the_command(self):
        d = os.path.join(HF, "vision-perceiver-fourier")
        c = perceiver.ImageClassifier(d)
        images = [os.path.join(IMAGES, "rocket.jpg"), os.path.join(IMAGES, "chelsea.png")]
        want = cli("classify", "--model", d, *images, "--top", "3")
        with open(images[1], "rb") as f:
            encoded = f.read()
        got = c.classify([images[0], encoded], top=3)
        lines = []
        for path, ranked in zip(images, got):
            lines.append(path)
            lines += [f"  {r['probability']:.4f}  {r['index']}  {r['label']}" for r in ranked]
        self.assertEqual("\n".join(lines) + "\n", want)
        with self.assertRaisesRegex(perceiver.Error, "expected an image classification model folder"):
            perceiver.ImageClassifier(os.path.join(HF, "language-perceiver"))
        with self.assertRaisesRegex(perceiver.Error, "uint8"):
            c.classify([np.zeros((8, 8, 3), np.float32)])

    def test_flow_matches_the_command(self):
        d = os.path.join(HF, "optical-flow-perceiver")
        m = perceiver.load(d)
        rng = np.random.default_rng(0)
        a = rng.integers(0, 256, (9, 14, 3), dtype=np.uint8)
        b = np.roll(a, 1, axis=1)
        with tempfile.TemporaryDirectory() as tmp:
            for name, img in (("a.png", a), ("b.png", b)):
                write_png(os.path.join(tmp, name), img)
            cli("flow", "--model", d, os.path.join(tmp, "a.png"), os.path.join(tmp, "b.png"), "--out",
                os.path.join(tmp, "f.flo"), "--min-overlap", "3")
            want = read_flo(os.path.join(tmp, "f.flo"))
            got = perceiver.flow(m, a, os.path.join(tmp, "b.png"), min_overlap=3)
        self.assertEqual(got.shape, (9, 14, 2))
        np.testing.assert_array_equal(got, want)
        picture = perceiver.flow_to_color(got)
        self.assertEqual((picture.shape, picture.dtype), ((9, 14, 3), np.uint8))
        with self.assertRaisesRegex(perceiver.Error, "same size"):
            perceiver.flow(m, a, a[:8])


def write_png(path, rgb):
    import zlib
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class Training(unittest.TestCase):
    def config(self, tmp):
        data = os.path.join(tmp, "train.jsonl")
        words = ["sun rain wind ", "one two three ", "red green blue "]
        classes = ["alpha", "beta", "gamma"]
        with open(data, "w") as f:
            for i in range(90):
                f.write(json.dumps({"text": words[i % 3] + str(i), "label": classes[i % 3]}) + "\n")
        hub = {"architectures": ["PerceiverForSequenceClassification"], "d_model": 16, "d_latents": 24,
               "num_latents": 8, "num_self_attends_per_block": 1, "num_self_attention_heads": 2,
               "num_cross_attention_heads": 1, "qk_channels": 16, "v_channels": 24, "max_position_embeddings": 40,
               "num_labels": 3}
        return {"model": {"type": "perceiver_io", "hub_config": hub},
                "train": {"epochs": 8, "batch_size": 10, "lr": 3e-3, "warmup_steps": 2, "seed": 1, "log_every": 3},
                "data": {"format": "labelled_text", "dir": data, "seq_len": 32, "test_fraction": 0.2}}

    def test_train_reports_progress_learns_and_exports(self):
        with tempfile.TemporaryDirectory() as tmp:
            records = []
            r = perceiver.train(self.config(tmp), out=os.path.join(tmp, "run"), quiet=True, progress=records.append)
            self.assertFalse(r["interrupted"])
            self.assertEqual(r["test_count"], 18)
            self.assertEqual(r["test_epoch"], 8)
            self.assertGreaterEqual(r["test_accuracy"], 0.9)
            evals = [x for x in records if x["type"] == "eval"]
            self.assertEqual([x["epoch"] for x in evals], list(range(1, 9)))
            self.assertTrue(any(x["type"] == "train" for x in records))
            with open(os.path.join(tmp, "run", "metrics.jsonl")) as f:
                self.assertEqual([json.loads(line) for line in f], records)  # the same records as the file
            with open(os.path.join(tmp, "run", "plot.png"), "rb") as f:  # the loss/accuracy plot of the run
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
            m = perceiver.load(os.path.join(tmp, "run"))  # a run directory: its export/
            self.assertEqual(m.architecture, "PerceiverForSequenceClassification")
            ckpt = perceiver.load(os.path.join(tmp, "run", "model.safetensors"))
            ids = np.full((1, 32), 0, dtype=np.int32)
            np.testing.assert_array_equal(m({"inputs": ids})["logits"], ckpt({"inputs": ids})["logits"])

    def test_an_exception_in_progress_stops_with_a_checkpoint_and_resume_finishes(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "run")
            cfg = self.config(tmp)

            def stop_after_first_eval(record):
                if record["type"] == "eval":
                    raise KeyError("stop here")

            with self.assertRaisesRegex(KeyError, "stop here"):
                perceiver.train(cfg, out=out, quiet=True, progress=stop_after_first_eval)
            self.assertTrue(os.path.exists(os.path.join(out, "checkpoint.safetensors")))
            r = perceiver.train(cfg, out=out, quiet=True, resume=True)
            self.assertFalse(r["interrupted"])
            self.assertGreater(r["steps"], 0)
            with self.assertRaisesRegex(perceiver.Error, "train.epochs"):
                perceiver.train(cfg, out=os.path.join(tmp, "bad"), overrides={"train.epochs": -1}, quiet=True)
            with self.assertRaisesRegex(perceiver.Error, "cfg.json"):
                with open(os.path.join(tmp, "cfg.json"), "w") as f:
                    json.dump({"model": {"type": "nonsense"}, "train": {}, "data": {}}, f)
                perceiver.train(os.path.join(tmp, "cfg.json"), out=os.path.join(tmp, "bad2"), quiet=True)


if __name__ == "__main__":
    unittest.main()
