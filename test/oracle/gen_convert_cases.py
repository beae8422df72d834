"""Writes the PyTorch checkpoints the conversion oracle test converts, and a manifest describing them.

usage: gen_convert_cases.py OUT_DIR

Each case is a real torch.save file (torch 1.13 from Debian). File names are relative to OUT_DIR; `reference` names the file whose
torch.load result the converted .safetensors must equal (itself, except for the big-endian copy,
which torch 1.13 cannot read: it is compared with the little-endian original it was made from).
"""
import collections
import io
import json
import os
import sys
import warnings
import zipfile

import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(1234)
cases = {}


def save(name, obj, legacy=False, expect="ok", **extra):
    path = os.path.join(out, name + ".pt")
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    cases[name] = dict(file=name + ".pt", reference=name + ".pt", expect=expect, **extra)
    return path


def linear_state():
    m = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    return m.state_dict()


def all_dtypes():
    d = collections.OrderedDict()
    d["f64"] = torch.randn(3, 4, dtype=torch.float64)
    d["f32"] = torch.randn(5, 2)
    d["f16"] = torch.randn(7).half()
    d["bf16"] = torch.randn(2, 3).bfloat16()
    d["i8"] = torch.randint(-128, 127, (9,), dtype=torch.int8)
    d["i16"] = torch.randint(-30000, 30000, (2, 5), dtype=torch.int16)
    d["i32"] = torch.randint(-2**31, 2**31 - 1, (4,), dtype=torch.int32)
    d["i64"] = torch.tensor([-2**62, 2**62, 0, 1, -1], dtype=torch.int64)
    d["u8"] = torch.randint(0, 255, (3, 3), dtype=torch.uint8)
    d["bool"] = torch.tensor([True, False, True, True])
    d["c64"] = torch.randn(3, dtype=torch.complex64)
    return d


def views():
    base = torch.arange(100, dtype=torch.float32)
    grid = torch.arange(60, dtype=torch.int64).view(6, 10)
    return {
        "base": base,
        "slice": base[10:30],                     # storage offset
        "transposed": base[:50].view(5, 10).t(),  # non-contiguous
        "step": base[::3],                        # stride 3
        "column": grid[:, 3],                     # offset + stride
        "block": grid[1:4, 2:7],                  # 2-d window
        "expanded": torch.arange(3, dtype=torch.int16).expand(4, 3),  # stride 0
        "permuted": torch.arange(24, dtype=torch.float64).view(2, 3, 4).permute(2, 0, 1),
        "every_other_row": torch.arange(400, dtype=torch.float32).view(20, 20)[::2],  # 80-byte contiguous rows
    }


save("plain", linear_state())
save("dtypes", all_dtypes())
save("zero_d", {"f": torch.tensor(3.5), "i": torch.tensor(7), "b": torch.tensor(True), "h": torch.tensor(1.25).half()})
save("empty", {"e1": torch.empty(0), "e2": torch.zeros(3, 0, dtype=torch.int32), "full": torch.ones(2)})
w = torch.randn(6, 4)
save("tied", {"embed.weight": w, "lm_head.weight": w, "other": torch.randn(2)}, tied={"lm_head.weight": "embed.weight"})
save("views", views())
save("wrapped", {"state_dict": linear_state(), "epoch": 3, "best": torch.tensor(0.5)}, unwrap="state_dict")
p = torch.nn.Parameter(torch.randn(3, 3))
save("params", collections.OrderedDict([("p", p), ("q", torch.nn.Parameter(torch.randn(2), requires_grad=False)), ("buf", torch.arange(4))]))
save("nested", {"encoder": {"layers": [linear_state(), linear_state()]}, "head": torch.randn(2, 2)})
save("legacy_plain", linear_state(), legacy=True)
save("legacy_dtypes", all_dtypes(), legacy=True)
save("legacy_views", views(), legacy=True)
save("legacy_tied", {"a": w, "b": w}, legacy=True, tied={"b": "a"})


# A tiny language model whose output layer is tied to its embedding, saved in the legacy format. Every storage
# holds 40 elements, so the u64 count that follows the fifth pickle starts with 0x28 (MARK), which reads like the
# start of another pickle (this used to leave the scan, and so the converter, with no tensors).
class TinyLM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.proj = torch.nn.Linear(4, 10, bias=False)
        self.head = torch.nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight


lm = TinyLM()
save("legacy_tied_lm", lm.state_dict(), legacy=True, tied={"head.weight": "embed.weight"})
save("legacy_tied_params", lm.state_dict(keep_vars=True), legacy=True, tied={"head.weight": "embed.weight"})
save("legacy_tied_wrapped", {"model_state_dict": lm.state_dict(), "epoch": 7}, legacy=True,
     tied={"head.weight": "embed.weight"}, unwrap="model_state_dict")


# Big-endian source: the same archive with byteorder "big" and every storage byte-swapped.
def big_endian_copy(src, dst):
    import pickle

    key_size = {}  # storage key -> dtype, from data.pkl's persistent ids (read with a restricted unpickler)

    class P(pickle.Unpickler):
        def persistent_load(self, pid):
            _, stype, key, _loc, _n = pid
            key_size[key] = stype.dtype
            return None

        def find_class(self, mod, name):
            if mod == "torch._utils" and name == "_rebuild_tensor_v2":
                return lambda *a, **k: None
            if mod == "collections" and name == "OrderedDict":
                return collections.OrderedDict
            if mod == "torch" and name.endswith("Storage"):
                return getattr(torch, name)
            raise pickle.UnpicklingError(f"{mod}.{name}")

    with zipfile.ZipFile(src) as zin:
        root = zin.namelist()[0].split("/")[0]
        P(io.BytesIO(zin.read(f"{root}/data.pkl"))).load()
        with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_STORED) as zout:
            for info in zin.infolist():
                data = zin.read(info)
                rel = info.filename[len(root) + 1:]
                if rel.startswith("data/") and rel[5:] in key_size:
                    dt = key_size[rel[5:]]
                    size = torch.empty((), dtype=dt).element_size()
                    unit = size // 2 if dt.is_complex else size
                    if unit > 1:
                        b = bytearray(data)
                        for i in range(0, len(b), unit):
                            b[i:i + unit] = b[i:i + unit][::-1]
                        data = bytes(b)
                zout.writestr(info, data)
            zout.writestr(f"{root}/byteorder", "big")


# Sparse tensors beside a dense one: safetensors has no sparse layout, so they are left out, and said so.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
def sparse_mixed():
    return {"w": torch.arange(6, dtype=torch.float32), "coo": torch.randn(4, 4).relu().to_sparse(),
            "csr": torch.randn(3, 3).relu().to_sparse_csr()}


save("sparse_mixed", sparse_mixed())
save("legacy_sparse_mixed", {k: v for k, v in sparse_mixed().items() if k != "csr"}, legacy=True)
torch.save({"w": sparse_mixed()["w"]}, os.path.join(out, "sparse_mixed_dense.pt"))  # what the conversions keep
for name in ("sparse_mixed", "legacy_sparse_mixed"):
    cases[name]["reference"] = "sparse_mixed_dense.pt"

big_endian_copy(os.path.join(out, "dtypes.pt"), os.path.join(out, "big_endian.pt"))
cases["big_endian"] = dict(file="big_endian.pt", reference="dtypes.pt", expect="ok")


# Refused: a pickle that calls os.system when loaded (built by hand, never loaded).
class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


save("evil", {"w": torch.ones(2), "x": Evil()}, expect="refuse", refuse_mentions="os.system")

with open(os.path.join(out, "cases.json"), "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f, indent=1)
