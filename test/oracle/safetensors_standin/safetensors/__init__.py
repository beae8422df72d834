"""Stand-in for the `safetensors` package (Debian does not ship it): the part of its documented API the rewritten
code uses, `safe_open(path, framework="pt", device=...)` with `.metadata()`, `.keys()` and `.get_tensor(name)`,
reading the file format with stdlib json + torch.frombuffer (not our reader). Test use only."""
import json
import struct

import torch

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "C64": torch.complex64,
}


class safe_open:
    def __init__(self, filename, framework, device="cpu"):
        if framework != "pt":
            raise ValueError(f"framework {framework!r} is not supported by this stand-in")
        with open(filename, "rb") as f:
            raw = f.read()
        (n,) = struct.unpack("<Q", raw[:8])
        self._header = json.loads(raw[8:8 + n].decode("utf-8"))
        self._meta = self._header.pop("__metadata__", None)
        self._data = raw[8 + n:]
        self._device = device

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def metadata(self):
        return self._meta

    def keys(self):
        return sorted(self._header)

    def get_tensor(self, name):
        h = self._header[name]
        dt = _DTYPES[h["dtype"]]
        b, e = h["data_offsets"]
        if e == b:
            t = torch.empty(h["shape"], dtype=dt)
        else:
            t = torch.frombuffer(bytearray(self._data[b:e]), dtype=dt).reshape(h["shape"])
        return t.to(self._device)
