#!/usr/bin/env python3
"""Writes tests/data/checkpoints/torch-save/: one tiny random BERT saved twice,
as torch.save's zip format (pytorch_model.bin, by the real torch.save) and as
safetensors (written by hand from the same tensors), so the C++ loaders can be
checked against a file PyTorch itself wrote. Run with /usr/bin/python3 (Debian
python3-torch 1.13); deterministic (seed 0)."""
import collections
import json
import os
import struct
import sys

import torch

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data", "checkpoints", "torch-save")
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
V, H, L, F, P = 64, 16, 2, 32, 40
config = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": V, "hidden_size": H,
          "num_hidden_layers": L, "num_attention_heads": 2, "intermediate_size": F, "hidden_act": "gelu",
          "max_position_embeddings": P, "type_vocab_size": 2, "pad_token_id": 0, "layer_norm_eps": 1e-12,
          "position_embedding_type": "absolute", "torch_dtype": "float32"}
sd = collections.OrderedDict()  # what module.state_dict() returns
def add(name, *shape, mean=0.0, std=0.3):
    sd[name] = (torch.randn(*shape) * std + mean).contiguous()
add("bert.embeddings.word_embeddings.weight", V, H, std=1.0)
add("bert.embeddings.position_embeddings.weight", P, H)
add("bert.embeddings.token_type_embeddings.weight", 2, H)
add("bert.embeddings.LayerNorm.weight", H, mean=1.0)
add("bert.embeddings.LayerNorm.bias", H)
for i in range(L):
    p = f"bert.encoder.layer.{i}."
    for m in ("query", "key", "value"):
        add(p + f"attention.self.{m}.weight", H, H, std=H ** -0.5)
        add(p + f"attention.self.{m}.bias", H)
    add(p + "attention.output.dense.weight", H, H, std=H ** -0.5)
    add(p + "attention.output.dense.bias", H)
    add(p + "attention.output.LayerNorm.weight", H, mean=1.0)
    add(p + "attention.output.LayerNorm.bias", H)
    add(p + "intermediate.dense.weight", F, H, std=H ** -0.5)
    add(p + "intermediate.dense.bias", F)
    add(p + "output.dense.weight", H, F, std=F ** -0.5)
    add(p + "output.dense.bias", H)
    add(p + "output.LayerNorm.weight", H, mean=1.0)
    add(p + "output.LayerNorm.bias", H)
add("bert.pooler.dense.weight", H, H)
add("bert.pooler.dense.bias", H)
# The integer buffer older transformers versions saved; loaders must skip it.
sd["bert.embeddings.position_ids"] = torch.arange(P).unsqueeze(0)

with open(os.path.join(out, "config.json"), "w") as f:
    json.dump(config, f, indent=2)
torch.save(sd, os.path.join(out, "pytorch_model.bin"))  # zip format (default since 1.6)

header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
for name, t in sd.items():
    dtype = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
    b = t.numpy().tobytes()
    header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
print("wrote", out)
