"""What the goldens scripts (tools/pytorch_*goldens*.py) share: where the goldens go, the pattern inputs the Java side
reimplements, and how values are written (JSON numbers that read back as the same float32, summaries, SHA-256 of the
bits, safetensors files).

Importing it makes PyTorch deterministic and single-threaded, as every golden needs: the numbers must not depend on
the machine's core count or on a nondeterministic kernel.
"""
import hashlib
import json
import math
import os
import struct

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CORE = os.path.join(ROOT, "core", "src", "test", "resources", "goldens")
EXAMPLES = os.path.join(ROOT, "examples", "src", "test", "resources", "goldens")
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)


def pattern(n, seed, scale=1.0, offset=0.0):
    """Deterministic pseudo-random values, computed in float64 then rounded to float32 (same as the Java side)."""
    return torch.tensor([offset + scale * math.sin(seed * 1.7 + i * 0.7311) * math.cos(i * 0.0173 + seed)
                         for i in range(n)], dtype=torch.float64).to(torch.float32)


def tensor(shape, seed, scale=1.0, offset=0.0):
    return pattern(math.prod(shape), seed, scale, offset).reshape(shape)


def t(x):
    """Values as JSON numbers that read back as the same float32 (9 significant digits)."""
    x = x.detach().to(torch.float32).cpu().contiguous().reshape(-1)
    return [float("%.9g" % v) for v in x.tolist()]


def big(x, limit=1024):
    """All values up to `limit`; beyond that every k-th value (k = ceil(n / limit)) with the sum and sum of squares
    of all of them, which keeps the file small while every element still counts in the sums."""
    flat = x.detach().to(torch.float32).cpu().contiguous().reshape(-1)
    if flat.numel() <= limit:
        return t(flat)
    stride = -(-flat.numel() // limit)
    d = flat.to(torch.float64)
    return {"n": flat.numel(), "stride": stride, "values": t(flat[::stride]), "sum": float(d.sum()),
            "sumsq": float((d * d).sum())}


def summary(x):
    x = x.detach().to(torch.float64).cpu().reshape(-1)
    return {"sum": float(x.sum()), "sumsq": float((x * x).sum()), "head": t(x[:8])}


def sha256(x):
    """SHA-256 of the float32 values, little-endian: equal iff every bit is equal."""
    return hashlib.sha256(x.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()).hexdigest()


def write_safetensors(path, tensors, metadata):
    """The safetensors layout, written by hand so that the safetensors package need not be installed: u64 header
    length, JSON header (dtype, shape, byte offsets, then __metadata__), padded with spaces to 8 bytes, raw
    little-endian data. int64 tensors stay I64, everything else is written as F32."""
    header, blobs, offset = {}, [], 0
    for k, v in tensors.items():
        v = v.detach().contiguous()
        if v.dtype == torch.int64:
            dtype, raw = "I64", v.numpy().astype("<i8").tobytes()
        else:
            dtype, raw = "F32", v.to(torch.float32).numpy().astype("<f4").tobytes()
        header[k] = {"dtype": dtype, "shape": list(v.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with _atomic(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def dump(path, obj):
    """obj as compact JSON and a newline."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with _atomic(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    print("wrote %s (%d KB)" % (os.path.relpath(path, ROOT), (os.path.getsize(path) + 1023) // 1024))


class _atomic:
    """A file opened as path.tmp and renamed over path once written, so a failed run leaves the old golden whole."""

    def __init__(self, path, mode):
        self.path, self.tmp = path, path + ".tmp"
        self.f = open(self.tmp, mode)

    def __enter__(self):
        return self.f

    def __exit__(self, kind, value, tb):
        self.f.close()
        if kind is None:
            os.replace(self.tmp, self.path)
        else:
            os.remove(self.tmp)
        return False
