"""Example training script with the unsafe loads Safe Weights flags (see README)."""
import pickle

import torch
import yaml

model = torch.load("examples/sd.pt")              # SW101: no weights_only=True
config = yaml.load(open("config.yaml"))            # SW107: yaml.load without a safe Loader
with open("examples/evil.pkl", "rb") as f:
    obj = pickle.load(f)                           # SW102: unpickling runs code
torch.save(model.state_dict(), "examples/out.pt")  # SW120: prefer safetensors
