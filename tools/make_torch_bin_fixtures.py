#!/usr/bin/env python3
"""Generates the torch.save fixtures under tests/data/torch_bin/ for tests/io/torch_pickle_test.cpp.

Developer tool only: the build and the tests never run it; its outputs are committed. Needs
`pip install torch safetensors numpy` (CPU wheels from PyPI are fine). Re-run from the repository
root after changing it:

    python3 tools/make_torch_bin_fixtures.py [out_dir]

Every valid NAME.bin (written by real torch.save) comes with NAME.safetensors holding the
expected tensors (made contiguous; same names, and the pickle's key order as the space-separated
metadata "order") so the C++ test can compare
load_pytorch_bin(NAME.bin) with load_safetensors(NAME.safetensors) exactly. The evil_* and
bad_* files are hand-built malicious or corrupt archives; none of them may load.
"""
import io
import os
import sys
import zipfile

import torch
from safetensors.torch import save_file

# The malicious pickles try to create this file; the C++ test checks it never appears.
PWNED_MARKER = "/tmp/perceiver_pwned_marker"


def save_pair(out_dir, name, state_dict, **save_kwargs):
    """torch.save(state_dict) as NAME.bin plus the expected values as NAME.safetensors."""
    torch.save(state_dict, os.path.join(out_dir, name + ".bin"), **save_kwargs)
    if save_kwargs:
        return
    expected = {k: v.detach().contiguous().clone() for k, v in state_dict.items()}
    # save_file sorts tensors; the pickle's insertion order travels in the metadata.
    save_file(expected, os.path.join(out_dir, name + ".safetensors"),
              metadata={"order": " ".join(state_dict.keys())})


def float32_state_dict():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 4),
        torch.nn.LayerNorm(4),
        torch.nn.Embedding(3, 4),
    )
    sd = model.state_dict()  # an OrderedDict with a _metadata attribute (BUILD in the pickle)
    sd["extra.scalar"] = torch.tensor(-2.5)
    sd["extra.rank3"] = torch.randn(2, 3, 2)
    sd["extra.empty"] = torch.zeros(0, 3)
    sd["extra.special"] = torch.tensor([float("inf"), float("-inf"), 1e-45, -0.0, 3.4e38])
    return sd


def views_state_dict():
    base = torch.arange(24, dtype=torch.float32) * 0.5
    w = torch.randn(3, 5)
    return {
        "transposed": w.t(),                   # stride (1, 5)
        "shared.a": base[2:8],                 # offset 2 into the shared storage
        "shared.b": base[10:].view(2, 7),      # offset 10, same storage as shared.a
        "shared.every_third": base[1::3],      # stride 3
        "shared.scalar": base[5],              # scalar view, offset 5
        "expanded": torch.tensor([1.0, 2.0, 3.0]).expand(4, 3),  # stride (0, 1)
        "permuted": torch.randn(2, 3, 4).permute(2, 0, 1),
        "sliced_cols": torch.randn(4, 6)[:, 1:4],
    }


def dtypes_state_dict():
    return {
        "f16": torch.tensor([1.0, -2.5, 65504.0, 6e-8, float("inf")], dtype=torch.float16),
        "bf16": torch.tensor([1.0, -3.0e38, 1e-3, 7.0], dtype=torch.bfloat16),
        "f64": torch.tensor([[1.0 / 3.0, -1e10], [2.0, 0.1]], dtype=torch.float64),
        "i64": torch.tensor([0, -7, 2**31 - 1, -(2**31)], dtype=torch.int64),
        "i32": torch.tensor([[1, 2], [3, -4]], dtype=torch.int32),
        "i16": torch.tensor([-32768, 32767], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, 0], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 3], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "f16_transposed": torch.arange(6, dtype=torch.float16).view(2, 3).t(),
    }


def parameter_state_dict():
    torch.manual_seed(1)
    # Parameters (not detached) pickle through torch._utils._rebuild_parameter.
    return {"param": torch.nn.Parameter(torch.randn(2, 3)), "buffer": torch.ones(2)}


def rezip(src, dst, compression=zipfile.ZIP_STORED, edit=None):
    """Copies a zip entry by entry, optionally compressing or editing entries (name, data)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if edit:
                data = edit(info.filename, data)
            zout.writestr(info.filename, data)


def evil_zip(path, pickle_bytes):
    """A torch.save-shaped archive whose data.pkl is the given (hand-written) pickle."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle_bytes)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")


def binunicode(s):
    b = s.encode()
    return b"X" + len(b).to_bytes(4, "little") + b


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/data/torch_bin"
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)

    save_pair(out_dir, "float32", float32_state_dict())
    save_pair(out_dir, "views", views_state_dict())
    save_pair(out_dir, "dtypes", dtypes_state_dict())
    save_pair(out_dir, "parameter", parameter_state_dict())
    save_pair(out_dir, "legacy", {"w": torch.ones(2)}, _use_new_zipfile_serialization=False)

    f32 = os.path.join(out_dir, "float32.bin")
    # Same archive with DEFLATE-compressed entries, and with zip64 records everywhere.
    rezip(f32, os.path.join(out_dir, "deflate.bin"), zipfile.ZIP_DEFLATED)
    limit = zipfile.ZIP64_LIMIT
    zipfile.ZIP64_LIMIT = 0  # forces zip64 extra fields and the zip64 end records
    rezip(f32, os.path.join(out_dir, "zip64.bin"))
    zipfile.ZIP64_LIMIT = limit

    # Malicious pickles: each would run a command or code if loaded with pickle.load.
    cmd = "touch " + PWNED_MARKER
    evil_zip(os.path.join(out_dir, "evil_os_system.bin"),
             b"\x80\x02cos\nsystem\n" + binunicode(cmd) + b"\x85R.")
    evil_zip(os.path.join(out_dir, "evil_eval.bin"),  # protocol 4, STACK_GLOBAL
             b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93"
             + binunicode("__import__('os').system('" + cmd + "')") + b"\x85R.")
    # A plausible state dict whose second value is built by os.system (posix on Linux).
    evil_zip(os.path.join(out_dir, "evil_nested.bin"),
             b"\x80\x02ccollections\nOrderedDict\n)R(" + binunicode("a") + b"K\x01"
             + binunicode("b") + b"cposix\nsystem\n" + binunicode(cmd) + b"\x85Ru.")
    # Old torch storage deserialization that calls pickle.loads internally.
    evil_zip(os.path.join(out_dir, "evil_load_from_bytes.bin"),
             b"\x80\x02}(" + binunicode("w") + b"ctorch.storage\n_load_from_bytes\n"
             + b"C\x01x\x85Ru.")
    evil_zip(os.path.join(out_dir, "bad_unknown_opcode.bin"), b"\x80\x02}\xff.")

    with zipfile.ZipFile(f32) as z:
        pkl_name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
        pkl = z.read(pkl_name)
        storage_names = sorted(n for n in z.namelist() if "/data/" in n)
    rezip(f32, os.path.join(out_dir, "bad_truncated_pickle.bin"),
          edit=lambda n, d: d[: len(d) // 2] if n == pkl_name else d)
    rezip(f32, os.path.join(out_dir, "bad_short_storage.bin"),
          edit=lambda n, d: d[:-4] if n == storage_names[0] else d)

    # Corrupt central directory: break the signature of the second central directory record.
    data = bytearray(open(f32, "rb").read())
    first = data.find(b"PK\x01\x02")
    second = data.find(b"PK\x01\x02", first + 4)
    data[second:second + 4] = b"XX\x01\x02"
    open(os.path.join(out_dir, "bad_central_directory.bin"), "wb").write(bytes(data))

    total = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
    print(f"wrote {len(os.listdir(out_dir))} files, {total} bytes, to {out_dir}")
    assert pkl and total < 200_000


if __name__ == "__main__":
    main()
