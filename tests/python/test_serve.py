"""Tests of `perceiver serve` (cli/serve_cmd.cpp), run by ctest under /usr/bin/python3: a server
on a free loopback port per test class, answers compared with the `perceiver` commands on the
same model folders (tests/data/hf), limits answered 4xx naming the limit, graceful SIGTERM."""

import json
import os
import signal
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

import numpy as np

from test_module import CLI, HF, IMAGES, assert_close, cli, load_safetensors


def safetensors_bytes(tensors):
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        kind = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32", np.dtype(np.int64): "I64"}[a.dtype]
        header[name] = {"dtype": kind, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return len(h).to_bytes(8, "little") + h + b"".join(blobs)


def parse_safetensors(data):
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    types = {"F32": np.float32, "I32": np.int32}
    return {k: np.frombuffer(data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]],
                             dtype=types[v["dtype"]]).reshape(v["shape"])
            for k, v in header.items() if k != "__metadata__"}


class Server:
    def __init__(self, model, *flags):
        self.proc = subprocess.Popen([CLI, "serve", "--model", model, "--port", "0", "--threads", "1", *flags],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "http://" not in line:
            self.proc.kill()
            raise AssertionError(f"serve did not start: {line}{self.proc.stderr.read()}")
        self.url = line.split("http://")[1].split(" ")[0]
        self.url = "http://" + self.url

    def request(self, path, body=None, content_type="application/octet-stream"):
        req = urllib.request.Request(self.url + path, data=body, method="POST" if body is not None else "GET")
        if body is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, err


class ServeLanguageModel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = os.path.join(HF, "language-perceiver")
        cls.server = Server(cls.dir, "--max-batch", "8", "--batch-wait-ms", "300", "--max-body-mib", "0.05")
        cls.inputs = load_safetensors(os.path.join(cls.dir, "inputs.safetensors"))
        cls.outputs = load_safetensors(os.path.join(cls.dir, "outputs.safetensors"))

    @classmethod
    def tearDownClass(cls):
        code, out, err = cls.server.stop()
        assert code == 0, (code, out, err)

    def test_healthz_and_unknown_endpoints(self):
        status, body = self.server.request("/healthz")
        self.assertEqual(status, 200)
        h = json.loads(body)
        self.assertEqual(h["architecture"], "PerceiverForMaskedLM")
        self.assertEqual(h["endpoints"], ["/v1/fill-mask", "/v1/run"])
        status, body = self.server.request("/v1/classify", b"x")
        self.assertEqual(status, 404)
        self.assertIn("no endpoint POST /v1/classify", json.loads(body)["error"])

    def test_run_gives_the_models_logits(self):
        body = safetensors_bytes({"inputs": self.inputs["inputs"], "attention_mask": self.inputs["attention_mask"]})
        status, data = self.server.request("/v1/run", body)
        self.assertEqual(status, 200, data[:300])
        out = parse_safetensors(data)
        assert_close(self, out["logits"], self.outputs["logits"], 1e-5)

    def test_concurrent_requests_are_batched_and_each_gets_its_rows(self):
        ids, mask = self.inputs["inputs"], self.inputs["attention_mask"]
        results = [None] * 8

        def one(i):
            row = i % 2  # each request one example: the fixture's row 0 or 1
            body = safetensors_bytes({"inputs": ids[row:row + 1], "attention_mask": mask[row:row + 1]})
            results[i] = self.server.request("/v1/run", body)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, (status, data) in enumerate(results):
            self.assertEqual(status, 200, data[:300])
            assert_close(self, parse_safetensors(data)["logits"][0], self.outputs["logits"][i % 2], 1e-5)
        metrics = self.server.request("/metrics")[1].decode()
        count = float(metrics.split("perceiver_batch_size_count ")[1].split("\n")[0])
        total = float(metrics.split("perceiver_batch_size_sum ")[1].split("\n")[0])
        self.assertLess(count, total, "some model call held several requests:\n" + metrics)
        self.assertIn('perceiver_requests_total{endpoint="run",code="200"}', metrics)
        self.assertIn('perceiver_request_duration_seconds_bucket{endpoint="run",le="+Inf"}', metrics)
        self.assertIn("perceiver_queue_length 0", metrics)

    def test_fill_mask_matches_the_command(self):
        text = "This is an incomplete sentence where some words are missing."
        want = cli("fill-mask", "--model", self.dir, text, "--mask", "51:60", "--top", "2").splitlines()
        status, body = self.server.request("/v1/fill-mask", json.dumps({"text": text, "spans": [[51, 60]], "top": 2}).encode(),
                                           "application/json")
        self.assertEqual(status, 200, body)
        r = json.loads(body)
        self.assertEqual(r["text"], want[0])
        for k, line in enumerate(want[1:]):
            shown = " ".join(f"'{t['token']}' {t['probability']:.4f}" for t in r["top"][k])
            self.assertEqual(line, f"token {r['positions'][k]}: {shown}")

    def test_bad_requests_are_4xx_naming_what_was_wrong(self):
        cases = [
            ("/v1/run", b"\x05\x00\x00\x00\x00\x00\x00\x00{bad}", 400, "[safetensors]"),
            ("/v1/run", b"", 400, "expected at least the 8-byte header"),
            ("/v1/run", safetensors_bytes({"nonsense": np.zeros((1, 3), np.float32)}), 400, "missing input 'inputs'"),
            ("/v1/run", safetensors_bytes({"inputs": np.full((1, 4), np.nan, np.float32)}), 400, "non-finite"),
            ("/v1/run", b"x" * 60000, 413, "larger than the limit of 52428 bytes (--max-body-mib 0.05"),
            ("/v1/fill-mask", b"{not json", 400, "request body"),
            ("/v1/fill-mask", b'{"text": 3}', 400, "expected a JSON object"),
            ("/v1/fill-mask", b'{"text": "no mask"}', 400, "nothing to fill"),
            ("/v1/fill-mask", b'{"text": "abc", "spans": [[2, 9]]}', 400, "expected 0 <= START < END <= 3"),
            ("/v1/fill-mask", b'{"text": "a[MASK]", "top": -1}', 400, "\"top\": expected an integer"),
        ]
        for path, body, status, message in cases:
            got, data = self.server.request(path, body)
            self.assertEqual(got, status, (path, body[:40], data))
            self.assertIn(message, json.loads(data)["error"], (path, body[:40]))
        self.assertEqual(self.server.request("/healthz")[0], 200)  # still serving
        metrics = self.server.request("/metrics")[1].decode()
        self.assertIn('perceiver_rejected_total{reason="body_too_large"} 1', metrics)


class ServeImageClassifier(unittest.TestCase):
    def test_classify_matches_the_command_and_limits(self):
        d = os.path.join(HF, "vision-perceiver-fourier")
        server = Server(d, "--max-image-pixels", "200000")
        try:
            big = os.path.join(IMAGES, "rocket.jpg")  # 640 x 427: over 200,000 pixels
            status, body = server.request("/v1/classify", open(big, "rb").read(), "image/jpeg")
            self.assertEqual(status, 400)
            self.assertIn("200000", json.loads(body)["error"])
            small = os.path.join(IMAGES, "chelsea.png")  # 451 x 300
            want = cli("classify", "--model", d, small, "--top", "3").splitlines()[1:]
            status, body = server.request("/v1/classify?top=3", open(small, "rb").read(), "image/png")
            self.assertEqual(status, 200, body)
            got = [f"  {r['probability']:.4f}  {r['index']}  {r['label']}" for r in json.loads(body)["labels"]]
            self.assertEqual(got, want)
            # the same image as a multipart upload
            boundary = "----perceiver-test"
            form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"c.png\"\r\n"
                    f"Content-Type: image/png\r\n\r\n").encode() + open(small, "rb").read() + f"\r\n--{boundary}--\r\n".encode()
            status, body = server.request("/v1/classify?top=3", form, f"multipart/form-data; boundary={boundary}")
            self.assertEqual(status, 200, body)
            self.assertEqual([f"  {r['probability']:.4f}  {r['index']}  {r['label']}" for r in json.loads(body)["labels"]], want)
            status, body = server.request("/v1/classify?top=zero", open(small, "rb").read(), "image/jpeg")
            self.assertEqual(status, 400)
            self.assertIn("query parameter top", json.loads(body)["error"])
            status, body = server.request("/v1/classify", b"not an image", "image/png")
            self.assertEqual(status, 400)
        finally:
            code, out, err = server.stop()
        self.assertEqual(code, 0, err)


class ServeShutdownAndQueue(unittest.TestCase):
    def test_queue_limit_and_sigterm_finishes_requests_in_flight(self):
        d = os.path.join(HF, "language-perceiver")
        server = Server(d, "--max-queue", "1", "--max-batch", "1")
        inputs = load_safetensors(os.path.join(d, "inputs.safetensors"))["inputs"]
        body = safetensors_bytes({"inputs": np.tile(inputs, (256, 1))})  # a slow request: 512 sequences
        results = []

        def one():
            results.append(server.request("/v1/run", body))

        threads = [threading.Thread(target=one) for _ in range(12)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        server.proc.send_signal(signal.SIGTERM)  # while requests are in flight
        for t in threads:
            t.join()
        out, err = server.proc.communicate(timeout=120)
        self.assertEqual(server.proc.returncode, 0, err)
        self.assertIn("stopped", out)
        codes = sorted(r[0] for r in results)
        self.assertIn(200, codes, "the requests in flight were answered")
        busy = [json.loads(r[1])["error"] for r in results if r[0] == 503]
        self.assertTrue(busy, f"with --max-queue 1, twelve at once must overflow: {codes}")
        self.assertIn("(--max-queue 1)", busy[0])
        self.assertTrue(all(c in (200, 503) for c in codes), codes)


if __name__ == "__main__":
    unittest.main()
