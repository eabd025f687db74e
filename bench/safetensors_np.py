"""safetensors bytes from NumPy arrays, for the benchmark scripts run under Debian's python3
(which has no safetensors package): an 8-byte little-endian header length, the JSON header,
the data."""

import json

import numpy as np

DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32"}


def safetensors_bytes(tensors):
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        header[name] = {"dtype": DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return len(h).to_bytes(8, "little") + h + b"".join(blobs)
