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

Peers of the quantized encoder (scripts/bench_quant_vs_peers.py runs these):
--dtypes also takes autocast-bf16 (fp32 weights, the forward under
torch.autocast("cpu", dtype=torch.bfloat16)) and qdynamic-int8 (the same
model as nn.Linear modules through torch.quantization.quantize_dynamic
({nn.Linear}, qint8): int8 weights per tensor (torch's default dynamic
qconfig), activations quantized per tensor at run time; engine 'onednn'
where supported, else 'fbgemm', else 'qnnpack'; the engine goes to
stderr). --checkpoint DIR
loads the weights of a Hugging Face checkpoint folder (model.safetensors in
F32, e.g. one written by tests/checkpoint_writer.h) instead of drawing
random ones; --batch-ids / --batch-mask (.npy, int64 [32, seq]) replace the
generated batch; --batch N times the first N rows; --dump DIR writes the
last hidden state of the first forward, fp32, to DIR/eager_<dtype>.npy;
--layers N keeps only the first N encoder layers (dumps then named
eager_<dtype>.L<N>.npy).
--export-onnx FILE exports the fp32 model (torch.onnx.export, opset 14,
dynamic batch and sequence axes) and exits; --int8-gemm-peak times PyTorch's
static torch.ops.quantized.linear on 4096-row int8 GEMMs and exits.

  /usr/bin/python3 scripts/bench_pytorch_eager.py [--shapes bge_small,bert_base] [--seqs 32,128] \
      [--threads 1,2] [--dtypes fp32,bf16] [--min-time 2] [--device cpu|cuda] [--attention matmul|sdpa]
      [--checkpoint DIR] [--batch 32] [--batch-ids IDS.npy --batch-mask MASK.npy] [--dump DIR] [--layers N]
      [--export-onnx FILE | --int8-gemm-peak]
"""
import argparse
import json
import math
import os
import struct
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


SAFETENSORS_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def read_safetensors(path):
    """name -> tensor for the float tensors of one .safetensors file (others, e.g. position_ids, skipped)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] not in SAFETENSORS_DTYPES:
            continue
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=SAFETENSORS_DTYPES[info["dtype"]]) if b > a else torch.empty(0)
        out[name] = t.reshape(info["shape"]).float()
    return out


def load_checkpoint(folder, dtype, device):
    """The model dict of make_model from a Hugging Face BERT checkpoint folder, and (hidden, layers, heads, ffn)."""
    cfg = json.load(open(os.path.join(folder, "config.json")))
    w = read_safetensors(os.path.join(folder, "model.safetensors"))
    pre = next((p for p in ("", "bert.") if p + "embeddings.word_embeddings.weight" in w), None)
    if pre is None:
        sys.exit(f"bench_pytorch_eager.py: {folder}: no embeddings.word_embeddings.weight in model.safetensors")
    g = lambda name: w[pre + name].to(dtype).to(device)
    e = "embeddings."
    m = {"word": g(e + "word_embeddings.weight"), "pos": g(e + "position_embeddings.weight"),
         "type": g(e + "token_type_embeddings.weight"), "ln": (g(e + "LayerNorm.weight"), g(e + "LayerNorm.bias")),
         "layers": []}
    pair = lambda name: (g(name + ".weight"), g(name + ".bias"))
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        m["layers"].append({
            "q": pair(p + "attention.self.query"), "k": pair(p + "attention.self.key"),
            "v": pair(p + "attention.self.value"), "o": pair(p + "attention.output.dense"),
            "ln1": pair(p + "attention.output.LayerNorm"), "i": pair(p + "intermediate.dense"),
            "out": pair(p + "output.dense"), "ln2": pair(p + "output.LayerNorm")})
    if abs(cfg.get("layer_norm_eps", 1e-12) - 1e-12) > 1e-15 or cfg.get("hidden_act", "gelu") != "gelu":
        sys.exit(f"bench_pytorch_eager.py: {folder}: this eager BERT runs layer_norm_eps 1e-12 and gelu only")
    return m, (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["intermediate_size"])


LINEARS = ("q", "k", "v", "o", "i", "out")


class EagerBert(torch.nn.Module):
    """The same forward with its Linears as nn.Linear modules (for quantize_dynamic and torch.onnx.export)."""

    def __init__(self, m, heads, sdpa=False):
        super().__init__()
        self.heads, self.sdpa = heads, sdpa
        self.lin = torch.nn.ModuleList()
        for L in m["layers"]:
            d = torch.nn.ModuleDict()
            for k in LINEARS:
                w, b = L[k]
                d[k] = torch.nn.Linear(w.shape[1], w.shape[0], dtype=w.dtype, device=w.device)
                d[k].weight.data.copy_(w)
                d[k].bias.data.copy_(b)
            self.lin.append(d)
        self.plain = {k: v for k, v in m.items() if k != "layers"}
        self.norms = [{k: L[k] for k in ("ln1", "ln2")} for L in m["layers"]]

    def forward(self, ids, mask):
        layers = [dict(n, **{k: self.lin[i][k] for k in LINEARS}) for i, n in enumerate(self.norms)]
        return forward(dict(self.plain, layers=layers), ids, mask, self.heads, self.sdpa)


def quantized_engine():
    """'onednn' where this torch has it, else 'fbgemm', else 'qnnpack'."""
    engines = torch.backends.quantized.supported_engines
    return next((e for e in ("onednn", "fbgemm", "qnnpack") if e in engines), None)


def quantize_dynamic(m, heads, sdpa):
    engine = quantized_engine()
    if engine is None:
        sys.exit(f"bench_pytorch_eager.py: no quantized engine in {torch.backends.quantized.supported_engines}")
    torch.backends.quantized.engine = engine
    q = torch.quantization.quantize_dynamic(EagerBert(m, heads, sdpa).eval(), qconfig_spec={torch.nn.Linear},
                                            dtype=torch.qint8)
    linears = [mod for mod in q.modules() if type(mod).__name__ == "Linear" and hasattr(mod, "weight")
               and callable(mod.weight)]
    schemes = sorted({str(mod.weight().qscheme()).replace("torch.", "") for mod in linears})
    print(f"# qdynamic-int8: quantized::linear_dynamic on the {engine} engine, {len(linears)} "
          f"{type(linears[0]).__module__}.Linear, qint8 weights {'/'.join(schemes)}, activations quantized per "
          f"tensor at run time", file=sys.stderr)
    return q


def int8_gemm_peak(threads, min_time):
    """PyTorch's static int8 GEMM: torch.ops.quantized.linear (quint8 activations per tensor, qint8 weights per
    output channel, quint8 output) at 4096 rows; one tsv line per size: K, N, threads, GOP/s, engine."""
    engine = quantized_engine()
    if engine is None:
        sys.exit(f"bench_pytorch_eager.py: no quantized engine in {torch.backends.quantized.supported_engines}")
    torch.backends.quantized.engine = engine
    torch.manual_seed(0)
    for th in threads:
        torch.set_num_threads(th)
        for k, n in ((768, 768), (768, 3072), (3072, 768)):
            x, w = torch.randn(4096, k), torch.randn(n, k) / 30
            qx = torch.quantize_per_tensor(x, float(x.abs().max()) / 127, 128, torch.quint8)
            sw = w.abs().amax(1) / 127
            qw = torch.quantize_per_channel(w, sw.double(), torch.zeros(n, dtype=torch.long), 0, torch.qint8)
            packed = torch.ops.quantized.linear_prepack(qw, torch.randn(n))
            out_scale = float((x @ w.t()).abs().max()) / 127
            torch.ops.quantized.linear(qx, packed, out_scale, 128)
            runs, t0 = 0, time.perf_counter()
            while True:
                torch.ops.quantized.linear(qx, packed, out_scale, 128)
                runs += 1
                el = time.perf_counter() - t0
                if el >= min_time:
                    break
            print(f"int8_gemm\t{k}\t{n}\t{th}\t{2 * 4096 * k * n * runs / el / 1e9:.2f}\t{engine}", flush=True)


def export_onnx(m, heads, path, ids, mask):
    model = EagerBert(m, heads).eval()
    torch.onnx.export(model, (ids, mask), path, input_names=["input_ids", "attention_mask"],
                      output_names=["last_hidden_state"], opset_version=14, do_constant_folding=True,
                      dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                    "last_hidden_state": {0: "batch", 1: "seq"}})
    print(f"# exported {path} (torch {torch.__version__}, opset 14)", file=sys.stderr)


def _lin(x, p):
    """A Linear: (weight, bias) through F.linear, or a module (nn.Linear, a dynamically quantized one)."""
    return F.linear(x, *p) if isinstance(p, tuple) else p(x)


def forward(m, ids, mask, heads, sdpa):
    b, t = ids.shape
    h = m["word"].shape[1]
    d = h // heads
    pos = torch.arange(t, device=ids.device).unsqueeze(0).expand(b, t)
    x = F.embedding(ids, m["word"]) + m["type"][0] + F.embedding(pos, m["pos"])
    x = F.layer_norm(x, (h,), *m["ln"], eps=1e-12)
    add = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
    for L in m["layers"]:
        q = _lin(x, L["q"]).view(b, t, heads, d).transpose(1, 2)
        k = _lin(x, L["k"]).view(b, t, heads, d).transpose(1, 2)
        v = _lin(x, L["v"]).view(b, t, heads, d).transpose(1, 2)
        if sdpa:
            c = F.scaled_dot_product_attention(q, k, v, attn_mask=add).transpose(1, 2).reshape(b, t, h)
        else:
            s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + add
            c = torch.matmul(torch.softmax(s, -1), v).transpose(1, 2).reshape(b, t, h)
        x = F.layer_norm(_lin(c, L["o"]) + x, (h,), *L["ln1"], eps=1e-12)
        y = _lin(F.gelu(_lin(x, L["i"])), L["out"])
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


def load_batch(a, seq, device):
    """The timed batch: generated (make_batch), or read from --batch-ids / --batch-mask; its first --batch rows."""
    if a.batch_ids:
        import numpy as np
        ids, mask = torch.from_numpy(np.load(a.batch_ids)), torch.from_numpy(np.load(a.batch_mask))
        if ids.shape[1] != seq:
            sys.exit(f"bench_pytorch_eager.py: {a.batch_ids} holds sequences of {ids.shape[1]} tokens, not {seq}")
        ids, mask = ids.to(device), mask.to(device)
    else:
        ids, mask = make_batch(seq, device)
    return ids[:a.batch].contiguous(), mask[:a.batch].contiguous()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="bge_small,bert_base,bert_large")
    ap.add_argument("--seqs", default="32,128,512")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--dtypes", default="fp32", help="fp32, bf16, fp16 (weights in that dtype), autocast-bf16, "
                    "qdynamic-int8")
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--format", choices=["md", "tsv"], default="md")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--attention", choices=["matmul", "sdpa"], default="matmul")
    ap.add_argument("--checkpoint", help="a Hugging Face BERT folder to run (with one --shapes name, its label)")
    ap.add_argument("--batch", type=int, default=BATCH, help=f"rows timed (at most {BATCH})")
    ap.add_argument("--batch-ids", help=".npy int64 [32, seq]: the batch's token ids")
    ap.add_argument("--batch-mask", help=".npy int64 [32, seq]: its attention mask")
    ap.add_argument("--dump", help="folder for eager_<dtype>.npy, the first forward's last hidden state")
    ap.add_argument("--layers", type=int, default=0,
                    help="run only the first N encoder layers (a check model; dumps named eager_<dtype>.L<N>.npy)")
    ap.add_argument("--export-onnx", metavar="FILE", help="export the fp32 model to ONNX and exit")
    ap.add_argument("--int8-gemm-peak", action="store_true", help="time torch.ops.quantized.linear and exit")
    a = ap.parse_args()
    cuda = a.device == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("bench_pytorch_eager.py: --device cuda: torch.cuda.is_available() is False")
    sdpa = a.attention == "sdpa"
    if sdpa and not hasattr(F, "scaled_dot_product_attention"):
        sys.exit(f"bench_pytorch_eager.py: --attention sdpa needs torch >= 2.0 (this is {torch.__version__})")
    if not 1 <= a.batch <= BATCH:
        sys.exit(f"bench_pytorch_eager.py: --batch must be 1..{BATCH}")
    if bool(a.batch_ids) != bool(a.batch_mask):
        sys.exit("bench_pytorch_eager.py: --batch-ids and --batch-mask go together")
    if a.checkpoint and len(a.shapes.split(",")) != 1:
        sys.exit("bench_pytorch_eager.py: --checkpoint runs one model: give one --shapes name as its label")
    if a.int8_gemm_peak:
        return int8_gemm_peak(list(map(int, a.threads.split(","))), a.min_time)
    if a.export_onnx:
        if not a.checkpoint:
            sys.exit("bench_pytorch_eager.py: --export-onnx needs --checkpoint")
        m, (hidden, layers, heads, ffn) = load_checkpoint(a.checkpoint, torch.float32, "cpu")
        if a.layers > 0:
            m["layers"] = m["layers"][:a.layers]
        ids, mask = load_batch(a, int(a.seqs.split(",")[0]), "cpu")
        return export_onnx(m, heads, a.export_onnx, ids, mask)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    threads = [0] if cuda else list(map(int, a.threads.split(",")))
    if a.format == "tsv":
        print(f"# torch {torch.__version__}, parallel backend "
              f"{torch.__config__.parallel_info().split('ATen parallel backend: ')[-1].splitlines()[0]}, "
              f"threads {','.join(map(str, threads))}", file=sys.stderr)
    if a.format == "md":
        print(f"torch {torch.__version__}, {torch.__config__.parallel_info().splitlines()[0]}")
        print("| model | dtype | seq | threads | ms/batch | sentences/s | tokens/s | GFLOP/s |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in a.shapes.split(","):
        for dt in a.dtypes.split(","):
            if dt in ("autocast-bf16", "qdynamic-int8") and cuda:
                sys.exit(f"bench_pytorch_eager.py: --dtypes {dt} is a CPU mode")
            dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16,
                     "autocast-bf16": torch.float32, "qdynamic-int8": torch.float32}[dt]
            if a.checkpoint:
                m, (hidden, layers, heads, ffn) = load_checkpoint(a.checkpoint, dtype, a.device)
            else:
                hidden, layers, heads, ffn = SHAPES[name]
                m = make_model(hidden, layers, heads, ffn, dtype, a.device)
            if a.layers > 0:
                m["layers"] = m["layers"][:a.layers]
                layers = len(m["layers"])
            run = lambda ids, mask: forward(m, ids, mask, heads, sdpa)
            if dt == "qdynamic-int8":
                qmodel = quantize_dynamic(m, heads, sdpa)
                run = lambda ids, mask: qmodel(ids, mask)
            elif dt == "autocast-bf16":
                def run(ids, mask):
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        return forward(m, ids, mask, heads, sdpa)
            for seq in map(int, a.seqs.split(",")):
                ids, mask = load_batch(a, seq, a.device)
                batch = ids.shape[0]
                for th in threads:
                    if th > 0:
                        torch.set_num_threads(th)
                    with torch.inference_mode():
                        out = run(ids, mask)  # warm-up
                        sync()
                        if a.dump and th == threads[0]:
                            import numpy as np
                            os.makedirs(a.dump, exist_ok=True)
                            suffix = f".L{a.layers}" if a.layers > 0 else ""
                            np.save(os.path.join(a.dump, f"eager_{dt}{suffix}.npy"), out.float().cpu().numpy())
                        n, t0 = 0, time.perf_counter()
                        while True:
                            run(ids, mask)
                            sync()
                            n += 1
                            el = time.perf_counter() - t0
                            if el >= a.min_time and n >= 1:
                                break
                    per = el / n
                    flops = batch * seq * layers * (8 * hidden * hidden + 4 * hidden * ffn + 4 * seq * hidden)
                    if a.format == "tsv":
                        print(f"{name}\t{dt}\t{seq}\t{th}\t{batch / per:.3f}\t{flops / per / 1e9:.2f}", flush=True)
                    else:
                        print(f"| {name} | {dt} | {seq} | {th} | {per * 1e3:.1f} | {batch / per:.2f} | "
                              f"{batch * seq / per:.0f} | {flops / per / 1e9:.1f} |", flush=True)


if __name__ == "__main__":
    main()
