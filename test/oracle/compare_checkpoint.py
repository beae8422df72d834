"""Deep comparison of two loaded checkpoints: same types (exactly), same keys in the same order, tensors and
numpy arrays equal in class, dtype, shape, values and requires_grad, floats bit for bit, attributes of
OrderedDicts (state_dict()'s _metadata) and argparse.Namespace fields. Used by checkpointRoundTrip.test.ts."""
import argparse
import collections
import math
import pathlib

import numpy
import torch


def differences(a, b, path="ckpt", out=None):
    out = [] if out is None else out
    if type(a) is not type(b):
        out.append(f"{path}: {type(a).__name__} vs {type(b).__name__}")
        return out
    if isinstance(a, torch.Tensor):
        if a.dtype != b.dtype or a.shape != b.shape:
            out.append(f"{path}: {a.dtype}{tuple(a.shape)} vs {b.dtype}{tuple(b.shape)}")
        elif a.requires_grad != b.requires_grad:
            out.append(f"{path}: requires_grad {a.requires_grad} vs {b.requires_grad}")
        elif not torch.equal(a.detach(), b.detach()) and not (a.is_floating_point() and torch.equal(a.detach().isnan(), b.detach().isnan()) and torch.equal(a.detach().nan_to_num(), b.detach().nan_to_num())):
            out.append(f"{path}: tensor values differ")
    elif isinstance(a, numpy.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
            out.append(f"{path}: numpy {a.dtype}{a.shape} vs {b.dtype}{b.shape} (or values)")
    elif isinstance(a, numpy.generic):
        if a.dtype != b.dtype or a.tobytes() != b.tobytes():
            out.append(f"{path}: numpy scalar {a!r} vs {b!r}")
    elif isinstance(a, float):
        if not (a == b and math.copysign(1, a) == math.copysign(1, b)) and not (math.isnan(a) and math.isnan(b)):
            out.append(f"{path}: {a!r} vs {b!r}")
    elif isinstance(a, dict):
        if list(a.keys()) != list(b.keys()):
            out.append(f"{path}: keys {list(a.keys())!r} vs {list(b.keys())!r}")
        else:
            for k in a:
                differences(a[k], b[k], f"{path}[{k!r}]", out)
        if isinstance(a, collections.OrderedDict):
            differences(getattr(a, "_metadata", None), getattr(b, "_metadata", None), f"{path}._metadata", out)
    elif isinstance(a, (list, tuple)):
        if len(a) != len(b):
            out.append(f"{path}: length {len(a)} vs {len(b)}")
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                differences(x, y, f"{path}[{i}]", out)
    elif isinstance(a, argparse.Namespace):
        differences(vars(a), vars(b), f"{path}.__dict__", out)
    elif isinstance(a, (set, frozenset, str, bytes, bytearray, int, bool, type(None), complex, pathlib.PurePath, torch.Size, torch.device)):
        if a != b:
            out.append(f"{path}: {a!r} vs {b!r}")
    else:
        out.append(f"{path}: cannot compare {type(a).__name__}")
    return out
