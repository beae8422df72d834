"""Writes the training checkpoints the checkpoint round-trip test converts (real torch.save, torch 1.13 from
Debian): what training code saves besides weights. usage: gen_checkpoint_cases.py OUT_DIR
Writes OUT_DIR/<case>.pt (or .pth / .ckpt) and OUT_DIR/manifest.json {case: {file, keeps: bool}}: `keeps` says
whether the whole checkpoint can be rebuilt without running code of its own (a pickled nn.Module cannot)."""
import argparse
import collections
import json
import os
import pathlib
import sys

import numpy as np
import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(7)
cases = {}


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 3)
        self.bn = torch.nn.BatchNorm1d(3)
        self.fc2 = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.fc2(self.bn(self.fc1(x)))


def trained():
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.1)
    for _ in range(2):
        opt.zero_grad()
        net(torch.randn(5, 4)).sum().backward()
        opt.step()
        sched.step()
    return net, opt, sched


def save(name, obj, ext=".pt", keeps=True, legacy=False):
    path = os.path.join(out, name + ext)
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    cases[name] = dict(file=name + ext, keeps=keeps)


net, opt, sched = trained()
training = {
    "epoch": 3, "model_state_dict": net.state_dict(), "optimizer_state_dict": opt.state_dict(),
    "scheduler": sched.state_dict(), "loss": 0.25, "best": float("nan"), "neg_zero": -0.0, "inf": float("inf"),
    "big": 2 ** 70, "name": "run-1 ✓", "flags": (True, None, False), "tags": {"a", "b"}, "frozen": frozenset([1, 2]),
    "blob": b"\x00\xffxyz", "buf": bytearray(b"ab"), "z": complex(1.5, -2), "shape": torch.Size([2, 3]),
    "device": torch.device("cpu"), "history": [0.9, 0.5, 0.25], (1, 2): "tuple key",
}
save("training", training, ext=".pth")
save("training_legacy", training, legacy=True)

args = argparse.Namespace(arch="transformer_iwslt_de_en", lr=[0.0005], data=pathlib.PosixPath("/data/iwslt14.bin"),
                          save_dir=pathlib.PurePosixPath("checkpoints"), max_tokens=4096, fp16=True, dropout=0.3,
                          seed=1, optimizer="adam", adam_betas="(0.9, 0.98)", update_freq=[1])
save("fairseq", {
    "args": args, "model": net.state_dict(),
    "optimizer_history": [{"criterion_name": "LabelSmoothedCrossEntropyCriterion", "optimizer_name": "FairseqAdam",
                           "lr_scheduler_state": {"best": 3.1}, "num_updates": 1200}],
    "extra_state": {"epoch": 10, "train_iterator": {"epoch": 10, "iterations_in_epoch": 0, "shuffle": True},
                    "val_loss": 3.1, "previous_epoch_end": True},
    "last_optimizer_state": opt.state_dict(),
})

save("lightning", {
    "epoch": 4, "global_step": 500, "pytorch-lightning_version": "2.2.1",
    "state_dict": collections.OrderedDict((f"model.{k}", v) for k, v in net.state_dict().items()),
    "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 5, "completed": 4}, "current": {"ready": 5, "completed": 4}},
                           "epoch_loop.state_dict": {"_batches_that_stepped": 500}}},
    "callbacks": {"ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0}": {
        "monitor": "val_loss", "best_model_score": torch.tensor(0.4123), "best_model_path": "/runs/epoch=3.ckpt",
        "current_score": torch.tensor(0.4123), "dirpath": "/runs", "best_k_models": {"/runs/epoch=3.ckpt": torch.tensor(0.4123)},
        "kth_best_model_path": "/runs/epoch=3.ckpt", "kth_value": torch.tensor(0.4123), "last_model_path": ""}},
    "optimizer_states": [opt.state_dict()], "lr_schedulers": [sched.state_dict()],
    "hparams_name": "kwargs", "hyper_parameters": {"lr": 0.001, "hidden": 32, "betas": (0.9, 0.999)},
}, ext=".ckpt")

save("numpy_inside", {
    "state_dict": net.state_dict(), "class_weights": np.array([0.2, 0.8], dtype=np.float32),
    "confusion": np.arange(6, dtype=np.int64).reshape(2, 3), "mask": np.array([True, False]),
    "best_acc": np.float64(0.91), "epoch": np.int64(7),
    "big": np.arange(300_000, dtype=np.float32),   # > 1 MB: the scan keeps its data by offset, not in memory
})

save("params", {"model": net.state_dict(keep_vars=True), "step": 1})
w = torch.randn(6, 4)
save("tied", {"embed": w, "head": w, "meta": {"n": 2}})

# Not rebuildable without the class's code: the whole model object
save("module", net, keeps=False)
torch.save(net.state_dict(), os.path.join(out, "module_state_dict.pt"))   # what its converted tensors must equal

with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f, indent=1)
