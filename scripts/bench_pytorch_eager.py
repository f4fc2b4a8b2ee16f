#!/usr/bin/env python3
"""PyTorch eager timing of the BERT forward pass at the shapes of
tests/bench/bench_encoder.cpp, for the native encoder's speed ratio.

A plain eager BERT (torch.nn.functional: embedding, linear, layer_norm,
gelu, matmul/softmax attention with an additive mask; what transformers'
BertModel runs in eager mode), random weights, batch 32 with the same
padding pattern as the C++ benchmark, under torch.inference_mode.
Run with /usr/bin/python3 (Debian python3-torch 1.13); malloc is tuned like
embeval's start-up (the script re-executes itself with glibc's
MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ set).

--device cuda runs on cuda:0 (fp16 allowed there; the threads list is
ignored and reported as 0) and synchronizes after every batch.
--attention sdpa replaces the matmul / softmax attention with
F.scaled_dot_product_attention (torch >= 2.0; what transformers' BertModel
uses by default there), the stronger baseline on GPUs.

  /usr/bin/python3 scripts/bench_pytorch_eager.py [--shapes bge_small,bert_base] [--seqs 32,128] \
      [--threads 1,2] [--dtypes fp32,bf16] [--min-time 2] [--device cpu|cuda] [--attention matmul|sdpa]
"""
import argparse
import math
import os
import sys
import time

if os.environ.get("MALLOC_MMAP_THRESHOLD_") is None:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(1 << 30), MALLOC_TRIM_THRESHOLD_=str(1 << 30))
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import torch
import torch.nn.functional as F

SHAPES = {"bge_small": (512, 4, 8, 2048), "bert_base": (768, 12, 12, 3072), "bert_large": (1024, 24, 16, 4096)}
BATCH, VOCAB = 32, 8000


def make_model(hidden, layers, heads, ffn, dtype, device):
    torch.manual_seed(0)
    r = lambda *s, std=1.0, mean=0.0: (torch.randn(*s) * std + mean).to(dtype).to(device)
    m = {"word": r(VOCAB, hidden), "pos": r(512, hidden, std=0.5), "type": r(2, hidden, std=0.5),
         "ln": (r(hidden, std=0.1, mean=1), r(hidden, std=0.1)), "layers": []}
    for _ in range(layers):
        s = 1 / math.sqrt(hidden)
        m["layers"].append({
            "q": (r(hidden, hidden, std=s), r(hidden, std=0.1)), "k": (r(hidden, hidden, std=s), r(hidden, std=0.1)),
            "v": (r(hidden, hidden, std=s), r(hidden, std=0.1)), "o": (r(hidden, hidden, std=s), r(hidden, std=0.1)),
            "ln1": (r(hidden, std=0.1, mean=1), r(hidden, std=0.1)),
            "i": (r(ffn, hidden, std=s), r(ffn, std=0.1)), "out": (r(hidden, ffn, std=1 / math.sqrt(ffn)), r(hidden, std=0.1)),
            "ln2": (r(hidden, std=0.1, mean=1), r(hidden, std=0.1))})
    return m


def forward(m, ids, mask, heads, sdpa):
    b, t = ids.shape
    h = m["word"].shape[1]
    d = h // heads
    pos = torch.arange(t, device=ids.device).unsqueeze(0).expand(b, t)
    x = F.embedding(ids, m["word"]) + m["type"][0] + F.embedding(pos, m["pos"])
    x = F.layer_norm(x, (h,), *m["ln"], eps=1e-12)
    add = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
    for L in m["layers"]:
        q = F.linear(x, *L["q"]).view(b, t, heads, d).transpose(1, 2)
        k = F.linear(x, *L["k"]).view(b, t, heads, d).transpose(1, 2)
        v = F.linear(x, *L["v"]).view(b, t, heads, d).transpose(1, 2)
        if sdpa:
            c = F.scaled_dot_product_attention(q, k, v, attn_mask=add).transpose(1, 2).reshape(b, t, h)
        else:
            s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + add
            c = torch.matmul(torch.softmax(s, -1), v).transpose(1, 2).reshape(b, t, h)
        x = F.layer_norm(F.linear(c, *L["o"]) + x, (h,), *L["ln1"], eps=1e-12)
        y = F.linear(F.gelu(F.linear(x, *L["i"])), *L["out"])
        x = F.layer_norm(y + x, (h,), *L["ln2"], eps=1e-12)
    return x


def make_batch(seq, device):
    torch.manual_seed(1)
    ids = torch.randint(5, VOCAB, (BATCH, seq))
    mask = torch.ones(BATCH, seq, dtype=torch.long)
    for r in range(BATCH):
        n = max(2, seq - r * seq // (4 * BATCH))
        ids[r, n:] = 0
        mask[r, n:] = 0
    return ids.to(device), mask.to(device)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="bge_small,bert_base,bert_large")
    ap.add_argument("--seqs", default="32,128,512")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--dtypes", default="fp32")
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--format", choices=["md", "tsv"], default="md")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--attention", choices=["matmul", "sdpa"], default="matmul")
    a = ap.parse_args()
    cuda = a.device == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("bench_pytorch_eager.py: --device cuda: torch.cuda.is_available() is False")
    sdpa = a.attention == "sdpa"
    if sdpa and not hasattr(F, "scaled_dot_product_attention"):
        sys.exit(f"bench_pytorch_eager.py: --attention sdpa needs torch >= 2.0 (this is {torch.__version__})")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    threads = [0] if cuda else list(map(int, a.threads.split(",")))
    if a.format == "md":
        print(f"torch {torch.__version__}, {torch.__config__.parallel_info().splitlines()[0]}")
        print("| model | dtype | seq | threads | ms/batch | sentences/s | tokens/s | GFLOP/s |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in a.shapes.split(","):
        hidden, layers, heads, ffn = SHAPES[name]
        for dt in a.dtypes.split(","):
            dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dt]
            m = make_model(hidden, layers, heads, ffn, dtype, a.device)
            for seq in map(int, a.seqs.split(",")):
                ids, mask = make_batch(seq, a.device)
                for th in threads:
                    if th > 0:
                        torch.set_num_threads(th)
                    with torch.inference_mode():
                        forward(m, ids, mask, heads, sdpa)  # warm-up
                        sync()
                        n, t0 = 0, time.perf_counter()
                        while True:
                            forward(m, ids, mask, heads, sdpa)
                            sync()
                            n += 1
                            el = time.perf_counter() - t0
                            if el >= a.min_time and n >= 1:
                                break
                    per = el / n
                    flops = BATCH * seq * layers * (8 * hidden * hidden + 4 * hidden * ffn + 4 * seq * hidden)
                    if a.format == "tsv":
                        print(f"{name}\t{dt}\t{seq}\t{th}\t{BATCH / per:.3f}\t{flops / per / 1e9:.2f}", flush=True)
                    else:
                        print(f"| {name} | {dt} | {seq} | {th} | {per * 1e3:.1f} | {BATCH / per:.2f} | "
                              f"{BATCH * seq / per:.0f} | {flops / per / 1e9:.1f} |", flush=True)


if __name__ == "__main__":
    main()
