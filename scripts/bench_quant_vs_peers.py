#!/usr/bin/env python3
"""embeval's quantized encoder against its peers, side by side in one run.

One random BERT checkpoint (tests/checkpoint_writer.h, written by
bench_quant_forward into --work) is run by every engine at the same shape
(bert-base: hidden 768, 12 layers, 12 heads, FFN 3072; or bge-small), seq
128, batch 32 (lengths 128 down to 97, right-padded) and one text of 128
tokens (batch-1 latency), all on --threads threads:

  embeval       build/tests/bench_quant_forward: BertModel::forward in fp32,
                bf16, wo-int8, wo-int4-g128 (gptq-* / awq-* run on the same
                weight-only kernel), w8a8, sq-w8a8-a0.5, and the four methods
                in a bf16 model (bf16+wo-int8, ...: weight-only through the
                bf16 GEMM, W8A8 with bf16 in and out, attention and LayerNorms
                in bf16); plus the time of one layer part by part
                (BM_layer_breakdown) and Int8Linear's GOP/s
  PyTorch       scripts/bench_pytorch_eager.py --checkpoint: eager fp32, eager
                under torch.autocast("cpu", bfloat16), and
                torch.quantization.quantize_dynamic({nn.Linear}, qint8) on the
                'onednn' quantized engine (else 'fbgemm', else 'qnnpack')
  ONNX Runtime  the same eager model through torch.onnx.export (opset 14), run
                by onnxruntime-node from npm (scripts/bench/onnx_runtime_peer.js,
                installed under scripts/bench/node_modules, git-ignored) in fp32
                and as a dynamic-int8 graph written here with the onnx Python
                API (Debian's python3-onnx): each MatMul with a constant weight
                becomes DynamicQuantizeLinear (uint8 activations, one scale and
                zero point per tensor, shared by the MatMuls of one input) +
                MatMulInteger (int8 symmetric weights, a scale per output column
                or per tensor: --ort-weight-scales) + Cast + Mul by the product of
                the scales: the pattern onnxruntime.quantization.quantize_dynamic
                writes (weight_type QInt8, reduce_range False); the attention
                products stay fp32, as in every other int8 engine here.

After the main table, --rounds (default 4) head-to-head rounds: the pairs
the issue's targets compare (W8A8 against quantize_dynamic and ONNX Runtime
int8, bf16 against autocast, weight-only against embeval fp32) timed next
to each other, each engine in a fresh process for --round-time seconds, one
round in one order and the next in the reverse; each round's ratio and
their median. One run of each engine says as much about the VM's moment as
about the engine (its speed drifts by 10-30% over minutes); the rounds'
median says which engine is faster.

The GEMM peaks are measured in the same run: fp32 and bf16 through
bench_encoder's BM_gemm_peak (4096 x 1024 x 1024; the encoder's kernel and
at::mm; bf16 the faster of embeval's AMX kernel and oneDNN's), int8 through PyTorch's static torch.ops.quantized.linear and
embeval's Int8Linear at 4096 rows (768->768, 768->3072, 3072->768; the best).
The VM's speed drifts by 10-30% over minutes, so each embeval fp32 / bf16
batch run also measures its dtype's GEMM peak right before and right after
its timed loop; "% of adjacent peak" is the fraction of their mean (of the
slower and the faster in brackets). "% of peak" stays the fraction of the
peak measured at the start.

Every engine's answer is checked, and no speed is shown without its check:
its last hidden state on the batch of 32 (dumped from the warm-up forward;
bench_quant_forward also checks each model against its own fp32 before
timing it) against eager fp32's on the same weights and ids.
fp32 engines: within 1e-2 everywhere, every token's centred cosine > 0.999.
Lossy engines: every mean-pooled text at cosine > 0.9 (0.99 for bf16) after
all layers, and a mean centred token cosine > 0.9 on the check model (the
same checkpoint cut to its first --check-layers 2 layers, run by every engine
too): random weights amplify rounding layer after layer (1% weight noise gives
a token cosine of 0.84 after 12 layers, 1.000 after 2), so at full depth a
noisy kernel and a wrong one look alike. The mean-pooled cosine alone says
nothing here: LayerNorm's bias is shared by every token, and two different
texts' mean-pooled outputs score 0.99 against each other at bert-base.
A row whose check fails shows its speed struck through; an engine that cannot
run keeps its row with the reason.

bf16 on a CPU without a bf16 GEMM (AVX2: oneDNN has none, both embeval and
PyTorch fall back to ATen at ~1 GFLOP/s, a batch of 32 at bert-base taking
~10 minutes) runs only the first rows of the batch (same rows for embeval and
eager; --bf16-seconds, the row says how many): per row the cost is the same.

  /usr/bin/python3 scripts/bench_quant_vs_peers.py [--build build] [--shape bert_base|bge_small]
      [--threads 2] [--min-time 2] [--variants fp32,bf16,wo-int8,...] [--bf16-seconds 30]
      [--ort-weight-scales channel|tensor] [--check-layers 2] [--rounds 4] [--round-time 2]
      [--skip-ort] [--work DIR]
      [--python /usr/bin/python3] [--node node]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_encoder_vs_eager import ROOT, print_header  # noqa: E402

SHAPES = {"bge_small": (0, 512, 4, 8, 2048), "bert_base": (1, 768, 12, 12, 3072)}  # bench_quant_forward's index
VARIANTS = ["fp32", "bf16", "wo-int8", "wo-int4-g128", "w8a8", "sq-w8a8-a0.5",
            "bf16+wo-int8", "bf16+wo-int4-g128", "bf16+w8a8", "bf16+sq-w8a8-a0.5"]
WEIGHT_ONLY = ("wo-int8", "wo-int4-g128")
WEIGHT_ONLY_BF16 = ("bf16+wo-int8", "bf16+wo-int4-g128")
INT8 = ("w8a8", "sq-w8a8-a0.5", "bf16+w8a8", "bf16+sq-w8a8-a0.5")
SEQ, BATCH = 128, 32
BENCH_DIR = os.path.join(ROOT, "scripts", "bench")


def flops(shape, rows):
    _, h, layers, _, ff = SHAPES[shape]
    return rows * SEQ * layers * (8 * h * h + 4 * h * ff + 4 * SEQ * h)


def run(cmd, timeout=3600, env=None):
    """(returncode, stdout, stderr); a missing program or a timeout is a returncode of -1 with the reason."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        return r.returncode, r.stdout, r.stderr
    except FileNotFoundError as e:
        return -1, "", str(e)
    except subprocess.TimeoutExpired:
        return -1, "", f"timed out after {timeout} s"


def last_line(text):
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


def bench_json(bench, flt, min_time=None):
    cmd = [bench, f"--benchmark_filter={flt}", "--benchmark_format=json"]
    if min_time is not None:
        cmd.append(f"--benchmark_min_time={min_time}")
    return cmd


def gemm_peaks(a):
    """bench_encoder's BM_gemm_peak at --threads: {"fp32": (GFLOP/s, what), "bf16": ..., "all": [(label, GFLOP/s)]}."""
    bench = os.path.join(a.build, "tests", "bench_encoder")
    rc, out, err = run(bench_json(bench, f"BM_gemm_peak/threads:{a.threads}/"))
    if rc != 0 or not out.strip():
        sys.exit(f"{bench}: {last_line(err)}")
    peaks = {"all": []}
    for b in json.loads(out)["benchmarks"]:
        peaks["all"].append((b["label"], b["GFLOP_per_s"]))
        kind = "bf16" if b["label"].endswith("bf16") else "fp32"
        if b["GFLOP_per_s"] > peaks.get(kind, (0, ""))[0]:
            peaks[kind] = (b["GFLOP_per_s"], b["label"])
    return peaks


def bf16_rows(a, peaks):
    """Rows of the batch bf16 runs: the most (a power of two) whose forward fits --bf16-seconds at the bf16 peak."""
    peak = peaks.get("bf16", (0, ""))[0]
    if peak <= 0:
        return BATCH
    rows = BATCH
    while rows > 1 and flops(a.shape, rows) / (peak * 1e9) > a.bf16_seconds:
        rows //= 2
    return rows


def embeval(a, work, rows_bf16):
    """Runs bench_quant_forward; returns (results by (bench, variant, batch), int8 peaks, error or None)."""
    bench = os.path.join(a.build, "tests", "bench_quant_forward")
    sid = SHAPES[a.shape][0]
    ids = {v: str(VARIANTS.index(v)) for v in a.variants}
    all_v = "|".join(ids.values())
    b1 = "|".join(i for v, i in ids.items() if v != "bf16") or "x"
    t = a.threads
    flt = "|".join([f"BM_int8_gemm_peak/shape:[0-2]/threads:{t}/",
                    f"BM_(quant_forward|layer_breakdown)/shape:{sid}/variant:({all_v})/batch:32/threads:{t}/",
                    f"BM_(quant_forward|layer_breakdown)/shape:{sid}/variant:({b1})/batch:1/threads:{t}/"])
    cmd = bench_json(bench, flt, a.min_time) + [f"--checkpoint_dir={work}/checkpoint", f"--dump_dir={work}/dump",
                                                 f"--bf16_rows={rows_bf16}", f"--check_layers={a.check_layers}"]
    print(f"# {' '.join(cmd)}", file=sys.stderr, flush=True)
    rc, out, err = run(cmd, timeout=7200)
    if not out.strip().startswith("{"):
        return {}, [], f"bench_quant_forward failed ({rc}): {last_line(err)}"
    try:
        report = json.loads(out)
    except json.JSONDecodeError:
        return {}, [], f"bench_quant_forward died mid-run ({rc}): {last_line(err)}"
    res, int8 = {}, []
    for b in report["benchmarks"]:
        parts = dict(p.split(":", 1) for p in b["name"].split("/")[1:] if ":" in p)
        if b["name"].startswith("BM_int8_gemm_peak"):
            if "error_message" not in b:
                int8.append((b["GOP_per_s"], b["label"]))
            continue
        kind = "forward" if b["name"].startswith("BM_quant_forward") else "breakdown"
        res[(kind, VARIANTS[int(parts["variant"])], int(parts["batch"]))] = b
    return res, int8, None


def embeval_round(a, work, rows_bf16, variants, min_time):
    """One timing round of bench_quant_forward --timing_only (the main run checked the same binary on the
    same checkpoint): {variant: sentences/s at batch 32} for those that ran."""
    bench = os.path.join(a.build, "tests", "bench_quant_forward")
    ids = "|".join(str(VARIANTS.index(v)) for v in variants)
    cmd = bench_json(bench, f"BM_quant_forward/shape:{SHAPES[a.shape][0]}/variant:({ids})/batch:32/threads:{a.threads}/",
                     min_time) + [f"--checkpoint_dir={work}/checkpoint", f"--bf16_rows={rows_bf16}", "--timing_only"]
    print(f"# {' '.join(cmd)}", file=sys.stderr, flush=True)
    rc, out, err = run(cmd, timeout=3600)
    try:
        report = json.loads(out)
    except json.JSONDecodeError:
        return {}
    got = {}
    for b in report["benchmarks"]:
        if "error_message" not in b:
            got[VARIANTS[int(dict(p.split(":", 1) for p in b["name"].split("/")[1:] if ":" in p)["variant"])]] = \
                b["sent_per_s"]
    return got


# The head-to-head pairs of the rounds: (embeval variants, peers) in groups run next to each other; a round
# runs the groups in this order and the next round in the reverse one (so a drift over a round favours no side).
ROUND_GROUPS = [(("w8a8", "bf16+w8a8"), (("eager", "qdynamic-int8"), ("ort", "int8"))),
                (("bf16",), (("eager", "autocast-bf16"),)),
                (("fp32", "wo-int8", "wo-int4-g128"), ())]


def rounds(a, work, rows_bf16, eager, ok_variants, ok_peers):
    """--rounds timing rounds of the pairs in ROUND_GROUPS: [{engine key: sentences/s}] per round."""
    out = []
    for r in range(a.rounds):
        got, cpu0 = {}, cpu_times()
        for variants, peers in (ROUND_GROUPS if r % 2 == 0 else ROUND_GROUPS[::-1]):
            steps = [("embeval", [v for v in variants if v in ok_variants])] + \
                [(p, None) for p in peers if p in ok_peers]
            for key, vs in (steps if r % 2 == 0 else steps[::-1]):
                if key == "embeval":
                    if vs:
                        got.update({("embeval", v): sps for v, sps in
                                    embeval_round(a, work, rows_bf16, vs, a.round_time).items()})
                elif key[0] == "eager":
                    res = eager.time(key[1], rows_bf16 if key[1] == "autocast-bf16" else BATCH, False,
                                     min_time=a.round_time)
                    if "sps" in res:
                        got[key] = res["sps"]
                else:
                    res = ort_time(a, os.path.join(work, "onnx", f"model_{key[1]}.onnx"), work, BATCH, None,
                                   a.round_time)
                    if "sps" in res:
                        got[key] = res["sps"]
        cpu1 = cpu_times()
        if cpu0 and cpu1 and sum(cpu1) > sum(cpu0):
            got["steal"] = (cpu1[7] - cpu0[7]) / (sum(cpu1) - sum(cpu0))
        out.append(got)
    return out


class Eager:
    def __init__(self, a, work):
        self.a, self.work = a, work
        self.dump = os.path.join(work, "dump", a.shape)
        self.base = [a.python, os.path.join(ROOT, "scripts", "bench_pytorch_eager.py"), "--shapes", a.shape,
                     "--seqs", str(SEQ), "--threads", str(a.threads), "--min-time", str(a.min_time),
                     "--checkpoint", os.path.join(work, "checkpoint", a.shape),
                     "--batch-ids", os.path.join(self.dump, "batch_ids.npy"),
                     "--batch-mask", os.path.join(self.dump, "batch_mask.npy")]

    def time(self, dtype, batch, dump, layers=0, min_time=None):
        """{"sps", "gflops", "info"} or {"error"}; layers > 0: the check model, run once for its dump."""
        cmd = self.base + ["--format", "tsv", "--dtypes", dtype, "--batch", str(batch)] + \
            (["--dump", self.dump] if dump else []) + (["--layers", str(layers), "--min-time", "0"] if layers else []) + \
            (["--min-time", str(min_time)] if min_time is not None and not layers else [])
        print(f"# {' '.join(cmd)}", file=sys.stderr, flush=True)
        rc, out, err = run(cmd)
        rows = [ln.split("\t") for ln in out.splitlines() if ln.count("\t") == 5]
        if rc != 0 or not rows:
            return {"error": f"bench_pytorch_eager.py --dtypes {dtype} failed: {last_line(err)}"}
        info = [ln[2:] for ln in err.splitlines() if ln.startswith("# ")]
        return {"sps": float(rows[0][4]), "gflops": float(rows[0][5]), "info": info}

    def int8_peak(self):
        cmd = [self.a.python, os.path.join(ROOT, "scripts", "bench_pytorch_eager.py"), "--int8-gemm-peak",
               "--threads", str(self.a.threads), "--min-time", str(min(self.a.min_time, 1.0))]
        rc, out, err = run(cmd)
        rows = [ln.split("\t") for ln in out.splitlines() if ln.startswith("int8_gemm\t")]
        if rc != 0 or not rows:
            return None, f"torch.ops.quantized.linear: {last_line(err)}"
        best = max(rows, key=lambda r: float(r[4]))
        return (float(best[4]), f"torch.ops.quantized.linear ({best[5]}, {best[1]}->{best[2]})"), None

    def export_onnx(self, path, layers=0):
        rc, out, err = run(self.base + ["--export-onnx", path] + (["--layers", str(layers)] if layers else []))
        return None if rc == 0 and os.path.exists(path) else f"torch.onnx.export failed: {last_line(err)}"


def write_int8_onnx(src, dst, per_channel):
    """The dynamic-int8 graph of onnxruntime's quantize_dynamic, written with the onnx API. Returns a description."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    model = onnx.load(src)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    uses = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    nodes, quantized_inputs, drop, count = [], {}, set(), 0
    for n in g.node:
        w_name = n.input[1] if n.op_type == "MatMul" and len(n.input) == 2 else None
        if w_name not in inits or len(inits[w_name].dims) != 2:
            nodes.append(n)
            continue
        w = numpy_helper.to_array(inits[w_name]).astype(np.float32)  # [K, N]
        scale = (np.maximum(np.abs(w).max(0), 1e-8) / 127).astype(np.float32) if per_channel else \
            np.array(max(float(np.abs(w).max()), 1e-8) / 127, dtype=np.float32)
        q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
        zp = np.zeros(scale.shape, dtype=np.int8)
        g.initializer.extend([numpy_helper.from_array(q, w_name + "_quantized"),
                              numpy_helper.from_array(scale, w_name + "_scale"),
                              numpy_helper.from_array(zp, w_name + "_zero_point")])
        if uses[w_name] == 1:
            drop.add(w_name)
        x = n.input[0]
        if x not in quantized_inputs:  # one DynamicQuantizeLinear per activation (Q, K and V share theirs)
            p = f"{x}_dq"
            nodes.append(helper.make_node("DynamicQuantizeLinear", [x], [p + "_q", p + "_scale", p + "_zp"],
                                          name=f"{p}_DynamicQuantizeLinear"))
            quantized_inputs[x] = (p + "_q", p + "_scale", p + "_zp")
        xq, xs, xzp = quantized_inputs[x]
        p = f"{n.name or w_name}_int8"
        nodes.append(helper.make_node("MatMulInteger", [xq, w_name + "_quantized", xzp, w_name + "_zero_point"],
                                      [p + "_acc"], name=p + "_MatMulInteger"))
        nodes.append(helper.make_node("Cast", [p + "_acc"], [p + "_acc_f"], to=TensorProto.FLOAT, name=p + "_Cast"))
        nodes.append(helper.make_node("Mul", [xs, w_name + "_scale"], [p + "_scale"], name=p + "_ScaleMul"))
        nodes.append(helper.make_node("Mul", [p + "_acc_f", p + "_scale"], [n.output[0]], name=p + "_Mul"))
        count += 1
    kept = [t for t in g.initializer if t.name not in drop]
    del g.initializer[:]
    g.initializer.extend(kept)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    return (f"{count} MatMuls -> DynamicQuantizeLinear (u8, per tensor) + MatMulInteger (s8 weights, symmetric, "
            f"{'per output column' if per_channel else 'per tensor'}) + Cast + Mul; onnx {onnx.__version__}")


def ensure_onnxruntime_node(a):
    """None when onnxruntime-node loads from scripts/bench/node_modules (installed there if missing), else why not."""
    probe = [a.node, "-e", "const o=require(process.argv[1]);console.log(o.env.versions.node||o.env.versions.common)",
             os.path.join(BENCH_DIR, "node_modules", "onnxruntime-node")]
    rc, out, err = run(probe, timeout=120)
    if rc == 0:
        return None
    npm = shutil.which("npm")
    if not npm:
        return "npm not found"
    env = dict(os.environ, ONNXRUNTIME_NODE_INSTALL="skip")  # the CPU binaries ship in the package
    print("# npm install onnxruntime-node into scripts/bench/node_modules", file=sys.stderr, flush=True)
    rc, out, err = run([npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", BENCH_DIR,
                        "onnxruntime-node"], timeout=900, env=env)
    if rc != 0:
        errs = [ln for ln in err.splitlines() if "error" in ln.lower()]
        return f"npm install onnxruntime-node failed: {(errs[-1] if errs else last_line(err))[:200]}"
    rc, out, err = run(probe, timeout=120)
    return None if rc == 0 else f"onnxruntime-node does not load: {last_line(err)}"


def ort_time(a, model, work, batch, dump, min_time=None):
    dumpdir = os.path.join(work, "dump", a.shape)
    cmd = [a.node, os.path.join(BENCH_DIR, "onnx_runtime_peer.js"), model, os.path.join(dumpdir, "batch_ids.bin"),
           os.path.join(dumpdir, "batch_mask.bin"), str(BATCH), str(SEQ), str(a.threads),
           str(a.min_time if min_time is None else min_time), dump or "", str(batch)]
    print(f"# {' '.join(cmd)}", file=sys.stderr, flush=True)
    rc, out, err = run(cmd)
    if rc != 0 or not out.strip():
        return {"error": f"onnx_runtime_peer.js failed: {last_line(err)}"}
    r = json.loads(out.strip().splitlines()[-1])
    return {"sps": batch / r["seconds_per_run"], "info": [f"onnxruntime-node {r['ort']}"]}


def centred_token_cosine(out, ref, mask):
    """Per unpadded token: cosine of its state to the reference's, both centred on the reference's mean token."""
    m = mask[:out.shape[0]].astype(bool)
    tok, tref = out[m].astype(np.float64), ref[:out.shape[0]][m].astype(np.float64)
    mu = tref.mean(0)
    a, b = tok - mu, tref - mu
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def check(out, ref, shallow, shallow_ref, mask, fp32, need_pooled, layers, check_layers):
    """An engine's last hidden state (all layers, and the check model's) against eager fp32's: (ok, text).

    fp32 engines: the whole model within 1e-2 of eager fp32 and every centred token cosine > 0.999. Lossy
    engines: mean-pooled texts at cosine > need_pooled after all layers, and a mean centred token cosine
    > 0.9 on the check model (random weights amplify rounding layer after layer, so after all layers a
    noisy kernel and a wrong one look alike; after a few they do not)."""
    rows = out.shape[0]
    r, m = ref[:rows], mask[:rows].astype(bool)
    if not np.isfinite(out).all() or (shallow is not None and not np.isfinite(shallow).all()):
        return False, "non-finite output"
    mf = m[..., None].astype(np.float64)
    pool = lambda x: (x * mf).sum(1) / mf.sum(1)
    p, pr = pool(out), pool(r)
    pooled = (p * pr).sum(1) / (np.linalg.norm(p, axis=1) * np.linalg.norm(pr, axis=1))
    deep = centred_token_cosine(out, ref, mask)
    ok = pooled.min() > need_pooled
    text = f"pooled cos {pooled.min():.4f}"
    if fp32:
        diff = float(np.abs(out[m] - r[m]).max())
        text += f", max diff {diff:.1e}, token cos min {deep.min():.5f}"
        ok = ok and diff < 1e-2 and deep.min() > 0.999
    elif shallow is None or shallow_ref is None:
        ok = False
        text += f"; no {check_layers}-layer output to check"
    else:
        tok = centred_token_cosine(shallow, shallow_ref, mask).mean()
        text += f"; token cos {tok:.3f} after {check_layers} layers, {deep.mean():.3f} after {layers}"
        ok = ok and tok > 0.9
    if rows < ref.shape[0]:
        text += f" ({rows} rows)"
    return ok, text


def eager_runs(variant, info, isa):
    """What a PyTorch peer's Linears run on, in a few words."""
    if variant == "fp32":
        return f"ATen F.linear -> BLAS ({blas_name()})"
    if variant == "autocast-bf16":  # torch 1.13: mkldnn_bf16_device_check wants avx512bw/vl/dq
        return ("ATen bf16 GEMM (oneDNN on AVX-512)" if "avx512f" in isa else
                "ATen's native bf16 GEMM (torch 1.13 uses oneDNN bf16 only on AVX-512)")
    line = next((i for i in info if i.startswith("qdynamic")), "")
    engine = re.search(r"on the (\w+) engine", line)
    scheme = re.search(r"weights (\S+),", line)
    return (f"quantized::linear_dynamic, {engine.group(1) if engine else '?'} engine, qint8 weights "
            f"{scheme.group(1) if scheme else '?'}")


def blas_name():
    path = "/usr/lib/x86_64-linux-gnu/libblas.so.3"
    return os.path.basename(os.path.dirname(os.path.realpath(path))) if os.path.exists(path) else "libblas"


ENGINE_NAMES = {("eager", "qdynamic-int8"): "PyTorch quantize_dynamic int8", ("ort", "int8"): "ONNX Runtime int8",
                ("eager", "autocast-bf16"): "PyTorch autocast bf16"}


def print_rounds(a, results):
    """The rounds' sentences/s per engine and the ratios of each pair, round by round, with their median."""
    n = len(results)
    name = lambda k: f"embeval {k[1]}" if k[0] == "embeval" else ENGINE_NAMES[k]
    keys = [("embeval", v) for g in ROUND_GROUPS for v in g[0]] + [p for g in ROUND_GROUPS for p in g[1]]
    keys = [k for k in keys if any(k in r for r in results)]
    if not keys:
        return
    print(f"\nHead to head in {n} rounds: each engine in a fresh process, one untimed forward, then timed for at "
          f"least {a.round_time:g} s at batch 32; within a round each pair runs side by side, and every other round "
          f"runs everything in the reverse order (so a drift of the machine's speed favours neither side). The "
          f"embeval runs are bench_quant_forward --timing_only, on the binary and checkpoint checked above; a peer "
          f"joins only where its check above passed. Sentences/s:\n")
    print_header(["engine"] + [f"round {i + 1}" for i in range(n)] + ["median"], text_columns=1)
    med = lambda xs: float(np.median(xs)) if xs else None
    for k in keys:
        xs = [r.get(k) for r in results]
        m = med([x for x in xs if x])
        print(f"| {name(k)} | " + " | ".join(f"{x:.2f}" if x else "–" for x in xs) + (f" | {m:.2f} |" if m else " | – |"))
    if any("steal" in r for r in results):
        print("| (CPU time stolen by the hypervisor) | " +
              " | ".join(f"{100 * r['steal']:.1f}%" if "steal" in r else "–" for r in results) + " | |")
    pairs = []
    for variants, peers in ROUND_GROUPS:
        for v in variants:
            for p in peers:
                pairs.append((("embeval", v), p))
    pairs += [(("embeval", v), ("embeval", "fp32")) for v in WEIGHT_ONLY]
    print("\nRatios of the pairs, per round (both timed in that round):\n")
    print_header(["embeval", "over"] + [f"round {i + 1}" for i in range(n)] + ["median", "lowest", "highest"],
                 text_columns=2)
    for x, y in pairs:
        rs = [r[x] / r[y] if r.get(x) and r.get(y) else None for r in results]
        got = [q for q in rs if q]
        if not got:
            continue
        print(f"| {x[1]} | {name(y)} | " + " | ".join(f"{q:.2f}" if q else "–" for q in rs) +
              f" | {med(got):.2f} | {min(got):.2f} | {max(got):.2f} |")


def cpu_times():
    """/proc/stat's first line (user, nice, system, idle, iowait, irq, softirq, steal, ...) in ticks, or None."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return [int(x) for x in fields[1:9]] if fields and fields[0] == "cpu" and len(fields) >= 9 else None
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--shape", choices=list(SHAPES), default="bert_base")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--bf16-seconds", type=float, default=30.0,
                    help="longest bf16 forward to time; fewer rows of the batch run when the bf16 peak is this low")
    ap.add_argument("--ort-weight-scales", choices=["channel", "tensor"], default="channel")
    ap.add_argument("--check-layers", type=int, default=2, help="layers of the check model lossy engines are held to")
    ap.add_argument("--rounds", type=int, default=4,
                    help="alternating head-to-head timing rounds after the main table (0: none)")
    ap.add_argument("--round-time", type=float, default=2.0, help="seconds each engine is timed in a round")
    ap.add_argument("--skip-ort", action="store_true")
    ap.add_argument("--work", help="folder for the checkpoint, outputs and ONNX models (default: a temporary one)")
    ap.add_argument("--python", default="/usr/bin/python3", help="the interpreter whose torch runs the PyTorch peers")
    ap.add_argument("--node", default="node")
    a = ap.parse_args()
    if not os.path.isdir(a.build) and os.path.isdir(os.path.join(ROOT, a.build)):
        a.build = os.path.join(ROOT, a.build)
    a.variants = [v for v in a.variants.split(",") if v]
    unknown = [v for v in a.variants if v not in VARIANTS]
    if unknown or "fp32" not in a.variants:
        sys.exit(f"--variants: from {', '.join(VARIANTS)}, fp32 included (got {', '.join(a.variants)})")
    for exe in ("bench_encoder", "bench_quant_forward"):
        if not os.access(os.path.join(a.build, "tests", exe), os.X_OK):
            sys.exit(f"{a.build}/tests/{exe} not built: ninja -C {a.build} bench_encoder bench_quant_forward")
    work = a.work or tempfile.mkdtemp(prefix="embeval-quant-peers-")
    os.makedirs(work, exist_ok=True)
    for sub in ("checkpoint", "dump", "onnx"):
        shutil.rmtree(os.path.join(work, sub), ignore_errors=True)
    t_start = time.time()
    shape = a.shape
    dumpdir = os.path.join(work, "dump", shape)

    load = {}  # phase -> (1-minute load average before, after): the machine may be shared
    steal = {}  # phase -> share of the CPUs' time the hypervisor gave to others during it (/proc/stat)

    def phase(name, fn, *args):
        before, cpu0 = os.getloadavg()[0], cpu_times()
        result = fn(*args)
        load[name] = (before, os.getloadavg()[0])
        cpu1 = cpu_times()
        if cpu0 and cpu1 and sum(cpu1) > sum(cpu0):
            steal[name] = (cpu1[7] - cpu0[7]) / (sum(cpu1) - sum(cpu0))
        return result

    peaks = phase("peaks", gemm_peaks, a)
    rows_bf16 = bf16_rows(a, peaks) if any(v.startswith("bf16") for v in a.variants) else BATCH
    native, int8_native, native_error = phase("embeval", embeval, a, work, rows_bf16)
    if native_error and not os.path.exists(os.path.join(dumpdir, "batch_ids.npy")):
        sys.exit(f"embeval: {native_error} (no checkpoint or batch written, so no peer can run either)")

    eager = Eager(a, work)
    torch_int8_peak, torch_int8_error = phase("torch int8 peak", eager.int8_peak)
    peers = {}  # (engine, variant, batch) -> result dict
    for dtype, rows in (("fp32", BATCH), ("autocast-bf16", rows_bf16), ("qdynamic-int8", BATCH)):
        peers[("eager", dtype, 32)] = phase(f"eager {dtype}", eager.time, dtype, rows, True)
        if dtype != "autocast-bf16":
            peers[("eager", dtype, 1)] = phase(f"eager {dtype} batch 1", eager.time, dtype, 1, False)
        if "error" not in peers[("eager", dtype, 32)]:
            eager.time(dtype, rows, True, a.check_layers)  # the check model's output

    ort_desc = {}
    if a.skip_ort:
        ort_error = {"fp32": "not run (--skip-ort)", "int8": "not run (--skip-ort)"}
    else:
        ort_error = {}
        os.makedirs(os.path.join(work, "onnx"), exist_ok=True)
        fp32_onnx = os.path.join(work, "onnx", "model_fp32.onnx")
        int8_onnx = os.path.join(work, "onnx", "model_int8.onnx")
        check_onnx = {k: os.path.join(work, "onnx", f"model_{k}.L{a.check_layers}.onnx") for k in ("fp32", "int8")}
        why = ensure_onnxruntime_node(a)
        if not why:
            why = eager.export_onnx(fp32_onnx) or eager.export_onnx(check_onnx["fp32"], a.check_layers)
        if why:
            ort_error = {"fp32": why, "int8": why}
        else:
            ort_desc["fp32"] = "torch.onnx.export (opset 14) of the eager model"
            try:
                ort_desc["int8"] = write_int8_onnx(fp32_onnx, int8_onnx, a.ort_weight_scales == "channel")
                write_int8_onnx(check_onnx["fp32"], check_onnx["int8"], a.ort_weight_scales == "channel")
            except ImportError:
                ort_error["int8"] = "python3-onnx not installed (apt-get install python3-onnx): no int8 graph"
            except Exception as e:  # noqa: BLE001 - any failure becomes the row's reason
                ort_error["int8"] = f"writing the int8 graph failed: {e}"
            for f in ("ids", "mask"):
                ids = np.load(os.path.join(dumpdir, f"batch_{f}.npy")).astype("<i8")
                ids.tofile(os.path.join(dumpdir, f"batch_{f}.bin"))
            for kind, model in (("fp32", fp32_onnx), ("int8", int8_onnx)):
                if kind in ort_error:
                    continue
                peers[("ort", kind, 32)] = phase(f"ONNX Runtime {kind}", ort_time, a, model, work, BATCH,
                                                 os.path.join(dumpdir, f"ort_{kind}.bin"))
                peers[("ort", kind, 1)] = phase(f"ONNX Runtime {kind} batch 1", ort_time, a, model, work, 1, None)
                ort_time(a, check_onnx[kind], work, BATCH,
                         os.path.join(dumpdir, f"ort_{kind}.L{a.check_layers}.bin"), 0)  # the check model's output

    # Checks against eager fp32 on the same weights and ids.
    mask = np.load(os.path.join(dumpdir, "batch_mask.npy"))
    hidden = SHAPES[shape][1]

    def read(name):
        """An engine's dumped last hidden state, [rows, seq, hidden] float32, or None."""
        for f in (os.path.join(dumpdir, name + ".npy"), os.path.join(dumpdir, name + ".bin")):
            if os.path.exists(f):
                return np.load(f) if f.endswith(".npy") else np.fromfile(f, dtype="<f4").reshape(-1, SEQ, hidden)
        return None

    ref, shallow_ref = read("eager_fp32"), read(f"eager_fp32.L{a.check_layers}")

    def checked(name, fp32, need):
        out = read(name)
        if ref is None:
            return False, "no eager fp32 reference to check against"
        if out is None:
            return False, "no output written"
        return check(out, ref, read(f"{name}.L{a.check_layers}"), shallow_ref, mask, fp32, need,
                     SHAPES[shape][2], a.check_layers)

    # The table rows.
    ctx_cpu = open("/proc/cpuinfo").read()
    model_name = next((ln.split(":", 1)[1].strip() for ln in ctx_cpu.splitlines() if ln.startswith("model name")), "?")
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")
           if re.search(rf"\b{f}\b", ctx_cpu)]
    rows = []
    nat32 = native.get(("forward", "fp32", 32))

    def sps_of(engine, variant):
        if engine == "embeval":
            b = native.get(("forward", variant, 32))
            return b["sent_per_s"] if b and "error_message" not in b else None
        r = peers.get((engine, variant, 32))
        return r["sps"] if r and "sps" in r else None

    for v in a.variants:
        b = native.get(("forward", v, 32))
        row = {"engine": "embeval", "variant": v}
        if b is None:
            row["error"] = native_error or "not run"
        elif "error_message" in b:
            row["error"] = f"check failed: {b['error_message']}"
        else:
            label = b["label"].split(" ", 1)[1]
            row["runs"] = (label.split("kernel ", 1)[1] if "kernel " in label else label).split(" (")[0]
            if "fp32-emulated" in label:
                row["runs"] = "int8 codes in an fp32 GEMM (oneDNN's int8 saturates without VNNI)"
            row["sps"], row["rows"] = b["sent_per_s"], int(b["rows"])
            if "peak_before_GFLOP_per_s" in b:
                row["adjacent"] = (b["peak_before_GFLOP_per_s"], b["peak_after_GFLOP_per_s"])
            b1 = native.get(("forward", v, 1))
            if b1 and "error_message" not in b1:
                row["lat"] = b1["real_time"]
            ok, text = checked(v, v == "fp32", 0.99 if v in ("fp32", "bf16") else 0.9)
            row["check"], row["check_ok"] = text, ok
        row["peak"] = "bf16" if v in ("bf16",) + WEIGHT_ONLY_BF16 else "int8" if v in INT8 else "fp32"
        if v in ("fp32",) + WEIGHT_ONLY:
            row["vs"] = [("eager", "fp32"), ("ort", "fp32")]
        elif v in WEIGHT_ONLY_BF16:
            row["vs"] = [("eager", "autocast-bf16"), ("ort", "fp32")]
        elif v == "bf16":
            row["vs"] = [("eager", "autocast-bf16")]
        else:
            row["vs"] = [("eager", "qdynamic-int8"), ("ort", "int8")]
        rows.append(row)

    for engine, variant, name, label in (("eager", "fp32", "PyTorch", "eager fp32"),
                                         ("eager", "autocast-bf16", "PyTorch", "eager autocast bf16"),
                                         ("eager", "qdynamic-int8", "PyTorch", "quantize_dynamic int8"),
                                         ("ort", "fp32", "ONNX Runtime", "fp32"),
                                         ("ort", "int8", "ONNX Runtime", "dynamic int8")):
        r = peers.get((engine, variant, 32))
        row = {"engine": name, "variant": label}
        if engine == "ort" and variant in ort_error:
            row["error"] = ort_error[variant]
        elif r is None or "error" in r:
            row["error"] = (r or {}).get("error", "not run")
        else:
            row["sps"] = r["sps"]
            row["rows"] = rows_bf16 if variant == "autocast-bf16" else BATCH
            r1 = peers.get((engine, variant, 1))
            if r1 and "sps" in r1:
                row["lat"] = 1000.0 / r1["sps"]
            if engine == "eager" and variant == "fp32":
                row["check"], row["check_ok"] = "the reference", True
            else:
                ok, text = checked(f"{engine}_{variant}", variant == "fp32",
                                   0.99 if variant in ("fp32", "autocast-bf16") else 0.9)
                row["check"], row["check_ok"] = text, ok
            info = r.get("info", [])
            if engine == "eager":
                row["runs"] = eager_runs(variant, info, isa)
            else:
                row["runs"] = f"{info[0] if info else 'onnxruntime-node'} CPU EP"
        row["peak"] = "bf16" if variant == "autocast-bf16" else "int8" if "int8" in variant else "fp32"
        rows.append(row)

    # Head-to-head rounds, only for engines whose answer passed its check above.
    passed = {(r["engine"], r["variant"]) for r in rows if r.get("check_ok") and "sps" in r}
    ok_variants = {v for e, v in passed if e == "embeval"}
    ok_peers = {key for key, label in ((("eager", "qdynamic-int8"), ("PyTorch", "quantize_dynamic int8")),
                                       (("eager", "autocast-bf16"), ("PyTorch", "eager autocast bf16")),
                                       (("ort", "int8"), ("ONNX Runtime", "dynamic int8"))) if label in passed}
    round_results = phase("rounds", rounds, a, work, rows_bf16, eager, ok_variants, ok_peers) if a.rounds > 0 else []

    # Peaks.
    fp32_peak = peaks.get("fp32", (float("nan"), "?"))
    bf16_peak = peaks.get("bf16", (float("nan"), "?"))
    int8_candidates = ([torch_int8_peak] if torch_int8_peak else []) + \
        [(g, f"embeval Int8Linear ({lbl})") for g, lbl in int8_native]
    int8_peak = max(int8_candidates, default=(float("nan"), "none measured"))
    peak_of = {"fp32": fp32_peak[0], "bf16": bf16_peak[0], "int8": int8_peak[0]}

    # Output.
    print(f"## embeval quantized encoder vs peers: {shape} (hidden {SHAPES[shape][1]}, {SHAPES[shape][2]} layers, "
          f"{SHAPES[shape][3]} heads, FFN {SHAPES[shape][4]}), seq {SEQ}, batch {BATCH}, {a.threads} threads\n")
    print(f"CPU: {model_name}, {os.cpu_count()} cpus, {' '.join(isa)}; run took {time.time() - t_start:.0f} s\n")
    busy = [k for k, (b, e) in load.items() if max(b, e) > a.threads + 0.75]
    if busy:
        print(f"**Busy machine**: the 1-minute load average rose above {a.threads} threads + 0.75 during: "
              f"{', '.join(busy)}. Other work shared the CPUs there; those numbers are low and not comparable.\n")
    all_peaks = "; ".join(f"{lbl} {g:.1f}" for lbl, g in peaks["all"])
    int8_all = "; ".join([f"{torch_int8_peak[1]} {torch_int8_peak[0]:.1f}" if torch_int8_peak else
                          f"torch.ops.quantized.linear not available: {torch_int8_error}"] +
                         [f"embeval Int8Linear {g:.1f} ({lbl})" for g, lbl in
                          sorted(int8_native, reverse=True)[:1]])
    print(f"GEMM peaks measured in this run ({a.threads} threads): fp32 {fp32_peak[0]:.1f} GFLOP/s, bf16 "
          f"{bf16_peak[0]:.2f} GFLOP/s (4096 x 1024 x 1024: {all_peaks}); int8 {int8_peak[0]:.1f} GOP/s "
          f"(4096 rows, best of 768/3072 shapes: {int8_all}).\n")
    print_header(["engine", "variant", "runs on", "sent/s (b32)", "batch-1 ms", "GFLOP/s", "% of peak",
                  "% of adjacent peak", "x embeval fp32", "vs PyTorch peer", "vs ORT peer", "check vs eager fp32"],
                 text_columns=3)
    fmt_ratio = lambda x: f"{x:.2f}" if x else "–"
    for row in rows:
        if "error" in row:
            print(f"| {row['engine']} | {row['variant']} | not available: {row['error']} |" + " – |" * 9)
            continue
        sps = row["sps"]
        gf = flops(shape, 1) * sps / 1e9
        note = f" ({row['rows']} rows)" if row["rows"] != BATCH else ""
        sps_text = f"{sps:.2f}{note}"
        if not row.get("check_ok", True):
            sps_text = f"~~{sps_text}~~ check failed"
        pct = 100 * gf / peak_of[row["peak"]] if peak_of[row["peak"]] == peak_of[row["peak"]] else float("nan")
        vs = {"eager": "–", "ort": "–"}
        if row["engine"] == "embeval":
            for engine, variant in row["vs"]:
                p = sps_of(engine, variant)
                vs[engine] = f"{sps / p:.2f} (/{variant})" if p else "–"
        x_fp32 = nat32["sent_per_s"] if nat32 and "error_message" not in nat32 else None
        lat = f"{row['lat']:.1f}" if "lat" in row else "–"
        adjacent = "–"
        if "adjacent" in row:
            lo, hi = sorted(row["adjacent"])
            adjacent = f"{200 * gf / (lo + hi):.0f}% ({100 * gf / hi:.0f}-{100 * gf / lo:.0f}%)"
        print(f"| {row['engine']} | {row['variant']} | {row.get('runs', '')} | {sps_text} | {lat} | {gf:.1f} | "
              f"{pct:.0f}% {row['peak']} | {adjacent} | {fmt_ratio(sps / x_fp32 if x_fp32 else None)} | {vs['eager']} | "
              f"{vs['ort']} | {row.get('check', '')}{'' if row.get('check_ok', True) else ' FAILED'} |")

    if round_results:
        print_rounds(a, round_results)

    # Breakdown.
    parts = ["qkv_ms", "attention_ms", "attn_out_ms", "ffn_in_ms", "ffn_out_ms", "add_ln_ms"]
    layers = SHAPES[shape][2]
    for batch in (32, 1):
        got = [(v, native[("breakdown", v, batch)]) for v in a.variants if ("breakdown", v, batch) in native
               and "error_message" not in native[("breakdown", v, batch)]]
        if not got:
            continue
        print(f"\nembeval, one encoder layer part by part, batch {batch} (ms per layer; % of the layer; "
              f"where both FFN Linears fuse (W8A8), the model runs the fused call instead of the two, and where "
              f"the whole layer runs a block of texts at a time on each thread (bf16 on AMX: "
              f"runners/bert/bert_layer_blocks.h), that; the forward is {layers} layers + embeddings, timed on "
              f"its own):\n")
        print_header(["variant", "QKV Linear", "attention", "attn-out Linear", "FFN-in Linear + GELU",
                      "FFN-out Linear", "adds + LayerNorms", "layer", "FFN fused", "layer in row blocks",
                      "embeddings", f"{layers} layers + embeddings", "forward"], text_columns=1)
        for v, b in got:
            total = sum(b[p] for p in parts)
            fused = b.get("ffn_fused_ms", 0.0)
            # An undefined fused call returns at once (microseconds); a real one costs about the two calls.
            has_fused = fused > 0.2 * (b["ffn_in_ms"] + b["ffn_out_ms"])
            in_model = total - b["ffn_in_ms"] - b["ffn_out_ms"] + fused if has_fused else total
            blocks = b.get("layer_blocks_ms", 0.0)
            has_blocks = blocks > 0.2 * total  # undefined: returns at once, as the fused call
            if has_blocks:
                in_model = blocks
            embed = b.get("embed_ms")
            fwd = native.get(("forward", v, batch))
            rows_note = f" ({int(b['rows'])} rows)" if int(b["rows"]) != batch else ""
            cells = [f"{b[p]:.2f} ({100 * b[p] / total:.0f}%)" for p in parts]
            fwd_ms = f"{fwd['real_time']:.1f}" if fwd and "error_message" not in fwd else "–"
            sum_ms = f"{layers * in_model + embed:.1f}" if embed is not None else f"{layers * in_model:.1f} + ?"
            print(f"| {v}{rows_note} | " + " | ".join(cells) + f" | {total:.2f} | "
                  f"{f'{fused:.2f}' if has_fused else '–'} | {f'{blocks:.2f}' if has_blocks else '–'} | "
                  f"{f'{embed:.2f}' if embed is not None else '–'} | "
                  f"{sum_ms} | {fwd_ms} |")

    # What each engine runs.
    print("\nWhat runs:\n")
    nat_labels = {v: native[("forward", v, 32)]["label"] for v in a.variants if ("forward", v, 32) in native
                  and "error_message" not in native[("forward", v, 32)]}
    for v, lbl in nat_labels.items():
        print(f"- embeval {v}: {lbl} (BertModel::forward, runners/kernels/attention.h, {a.threads} ATen threads)")
    for key in (("eager", "fp32", 32), ("eager", "autocast-bf16", 32), ("eager", "qdynamic-int8", 32)):
        r = peers.get(key, {})
        extra = "; ".join(r.get("info", []))
        print(f"- PyTorch {key[1]}: scripts/bench_pytorch_eager.py, {a.threads} threads"
              + (f"; {extra}" if extra else "") + (f"; NOT AVAILABLE: {r['error']}" if "error" in r else ""))
    for kind in ("fp32", "int8"):
        if kind in ort_error:
            print(f"- ONNX Runtime {kind}: not available: {ort_error[kind]}")
        else:
            r = peers.get(("ort", kind, 32), {})
            print(f"- ONNX Runtime {kind}: {'; '.join(r.get('info', []))} CPU execution provider, intra-op "
                  f"{a.threads} threads, graph optimization all; graph: {ort_desc.get(kind, '')}")
    if rows_bf16 != BATCH:
        print(f"- bf16 rows ran {rows_bf16} of the {BATCH} rows (full-length texts first): the bf16 GEMM peak here "
              f"({bf16_peak[0]:.2f} GFLOP/s, {bf16_peak[1]}) makes a batch of 32 take "
              f"~{flops(shape, BATCH) / (bf16_peak[0] * 1e9):.0f} s; sentences/s is per row of that work")
    print(f"- checks: every engine's last hidden state on the batch of 32 against eager fp32's (same checkpoint, same "
          f"ids); 'token cos' is the mean cosine of each unpadded token's state to eager fp32's, both centred on "
          f"eager's mean token (unrelated states score ~0); lossy engines are held to > 0.9 on the check model (the "
          f"first {a.check_layers} layers): random weights amplify rounding layer after layer, so after all "
          f"{SHAPES[shape][2]} layers noisy and wrong look alike")
    print("- 1-minute load average before -> after each phase (a load above the threads used means other work "
          "shared the CPUs; above 100% of peak: the peak was measured in a busier moment, or the kernel does better "
          "at the model's shapes than at the peak's): " +
          ", ".join(f"{k} {b:.1f} -> {e:.1f}" for k, (b, e) in load.items()))
    if steal:
        print("- CPU time stolen by the hypervisor during each phase (/proc/stat's steal over all the CPUs' time; "
              "on a VM, other guests' work: a phase with more than a few % ran slow): " +
              ", ".join(f"{k} {100 * v:.1f}%" for k, v in steal.items()))
    if a.work:
        print(f"- checkpoint, outputs and ONNX models kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
