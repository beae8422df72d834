#!/usr/bin/python3
"""Extra benign model files for the directory benchmark (scripts/bench/dir.mjs), written by the real libraries'
own save functions: OUT_DIR/<library>/<n>.<ext>. Sizes from ~1 KB to ~1 MB; deterministic (seeded).
Usage: /usr/bin/python3 dir_extra_corpus.py OUT_DIR COUNT"""
import os, pickle, sys
import numpy as np, pandas as pd, torch, joblib
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

out, count = sys.argv[1], int(sys.argv[2])
for d in ("torch", "sklearn", "numpy", "pandas"):
    os.makedirs(os.path.join(out, d), exist_ok=True)
X = np.random.default_rng(0).normal(size=(200, 8)); y = (X[:, 0] > 0).astype(int)
for i in range(count):
    rng = np.random.default_rng(i); torch.manual_seed(i)
    kind = i % 8
    size = [4, 16, 64, 256][i % 4] * (1 + i % 5)
    p = lambda lib, ext: os.path.join(out, lib, f"{i:05d}.{ext}")
    if kind == 0:
        torch.save({f"l{j}.weight": torch.randn(size) for j in range(1 + i % 20)}, p("torch", "pt"))
    elif kind == 1:
        torch.save({"model": {"w": torch.randn(size, 4), "b": torch.zeros(4)}, "epoch": i}, p("torch", "pth"), _use_new_zipfile_serialization=False)
    elif kind == 2:
        m = [LogisticRegression(max_iter=50), StandardScaler(), DecisionTreeClassifier(max_depth=3)][i % 3].fit(X, y)
        joblib.dump(m, p("sklearn", "joblib"), compress=3 if i % 16 == 2 else 0)
    elif kind == 3:
        with open(p("sklearn", "pkl"), "wb") as f:
            pickle.dump(StandardScaler().fit(rng.normal(size=(50, 1 + i % 30))), f)
    elif kind == 4:
        np.save(p("numpy", "npy"), rng.normal(size=size).astype(np.float32))
    elif kind == 5:
        np.savez(p("numpy", "npz"), a=rng.normal(size=size), b=np.arange(i % 50))
    elif kind == 6:
        pd.DataFrame({"a": rng.normal(size=size), "b": np.arange(size)}).to_pickle(p("pandas", "pkl"))
    else:
        pd.Series(rng.normal(size=size), name=f"s{i}").to_pickle(p("pandas", "pkl.gz"))
