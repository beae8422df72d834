"""Independent check of a converted file: reads the .safetensors with stdlib json + torch.frombuffer (not
our reader, not the safetensors package) and compares every tensor with torch.load(reference).

usage: check_safetensors.py CONVERTED.safetensors REFERENCE.pt [UNWRAP_KEY]
Prints one JSON object {"ok": bool, "errors": [...], "tensors": n, "removed": {...}} and exits 1 on a mismatch.
"""
import json
import struct
import sys

import torch

DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "C64": torch.complex64,
}

converted, reference = sys.argv[1], sys.argv[2]
unwrap = sys.argv[3] if len(sys.argv) > 3 else None
errors = []

with open(converted, "rb") as f:
    raw = f.read()
(n,) = struct.unpack("<Q", raw[:8])
if n % 8:
    errors.append(f"header length {n} is not a multiple of 8")
header = json.loads(raw[8:8 + n].decode("utf-8"))
data = raw[8 + n:]
meta = header.pop("__metadata__", {})
if meta.get("format") != "pt":
    errors.append(f"__metadata__.format is {meta.get('format')!r}")

# the data section must be covered exactly, in the order of the offsets, with every tensor aligned
spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in header.items())
pos = 0
for b, e, k in spans:
    if b != pos:
        errors.append(f"{k}: data starts at {b}, expected {pos}")
    pos = e
if pos != len(data):
    errors.append(f"data section is {len(data)} bytes, tensors cover {pos}")


def read(name):
    h = header[name]
    dt = DTYPES[h["dtype"]]
    b, e = h["data_offsets"]
    size = torch.empty((), dtype=dt).element_size()
    if b % size:
        errors.append(f"{name}: offset {b} not aligned to {size}")
    if e == b:
        return torch.empty(h["shape"], dtype=dt)
    return torch.frombuffer(bytearray(data[b:e]), dtype=dt).reshape(h["shape"])


def flatten(obj, prefix, out):
    if isinstance(obj, torch.Tensor):
        out[prefix or "tensor"] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            flatten(v, f"{prefix}.{i}" if prefix else str(i), out)


loaded = torch.load(reference)
if unwrap:
    loaded = loaded[unwrap]
expected = {}
flatten(loaded, "", expected)

removed = {k: v for k, v in meta.items() if k != "format"}
for name, want in expected.items():
    stored = removed.get(name, name)
    if stored not in header:
        errors.append(f"{name}: missing from the converted file")
        continue
    if name in removed and want.data_ptr() != expected[stored].data_ptr():
        errors.append(f"{name}: listed as an alias of {stored} but is not the same tensor")
    got = read(stored)
    want = want.detach()
    if got.dtype != want.dtype:
        errors.append(f"{name}: dtype {got.dtype} != {want.dtype}")
    elif list(got.shape) != list(want.shape):
        errors.append(f"{name}: shape {list(got.shape)} != {list(want.shape)}")
    elif not torch.equal(got, want.contiguous()):
        errors.append(f"{name}: values differ")
for name in header:
    if name not in expected:
        errors.append(f"{name}: in the converted file but not in the checkpoint")

print(json.dumps({"ok": not errors, "errors": errors, "tensors": len(header), "removed": removed}))
sys.exit(1 if errors else 0)
