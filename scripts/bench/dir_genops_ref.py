#!/usr/bin/python3
"""Reference for the directory benchmark (scripts/bench/dir.mjs): the floor under any Python pickle scanner.
Opens every file under DIR the way the loaders do (zipfile for zips, gzip / bz2 / lzma for compressed streams,
the .npy header for numpy, plain open otherwise) and runs pickletools.genops over every pickle in it (pickles
back to back, as torch's legacy format and joblib write them, until one does not parse). Prints a JSON line:
files, pickles, opcodes, seconds (inside Python, after imports)."""
import bz2, gzip, io, json, lzma, os, pickletools, sys, time, zipfile

def genops_all(f):
    pickles = ops = 0
    while True:
        try:
            n = 0
            for _ in pickletools.genops(f):
                n += 1
        except Exception:
            return pickles, ops + n
        if n == 0:
            return pickles, ops
        pickles += 1; ops += n

def npy(f):
    head = f.read(10)
    if head[:6] != b"\x93NUMPY":
        return 0, 0
    hlen = int.from_bytes(head[8:10], "little") if head[6] == 1 else int.from_bytes(head[8:10] + f.read(2), "little")
    header = f.read(hlen)
    return genops_all(f) if b"'O'" in header or b"|O" in header else (0, 0)

def stream(f):
    head = f.peek(6)[:6] if hasattr(f, "peek") else b""
    if head.startswith(b"\x93NUMPY"):
        return npy(f)
    return genops_all(f)

def scan(path):
    with open(path, "rb") as raw:
        head = raw.read(6); raw.seek(0)
        if zipfile.is_zipfile(raw):
            raw.seek(0)
            p = o = 0
            with zipfile.ZipFile(raw) as z:
                for name in z.namelist():
                    if name.endswith(".pkl") or name.endswith(".npy"):
                        with z.open(name) as m:
                            a, b = stream(io.BufferedReader(m))
                            p += a; o += b
            return p, o
        raw.seek(0)
        if head[:2] == b"\x1f\x8b": f = gzip.open(raw)
        elif head[:3] == b"BZh": f = bz2.open(raw)
        elif head[:6] == b"\xfd7zXZ\x00" or head[:3] == b"\x5d\x00\x00": f = lzma.open(raw, format=lzma.FORMAT_AUTO)
        else: f = io.BufferedReader(raw)
        return stream(f)

t0 = time.perf_counter()
files = pickles = ops = 0
for dirpath, _, names in os.walk(sys.argv[1]):
    for n in sorted(names):
        if n.endswith(".json"):
            continue
        files += 1
        a, b = scan(os.path.join(dirpath, n))
        pickles += a; ops += b
print(json.dumps({"files": files, "pickles": pickles, "opcodes": ops, "seconds": time.perf_counter() - t0}))
