#!/usr/bin/env python3
"""The native encoder against PyTorch eager, same shapes, one script.

Runs build/tests/bench_encoder (Google Benchmark: the GEMM peaks, then the
BERT forward at each shape) and scripts/bench_pytorch_eager.py (a plain
eager BERT in Debian's python3-torch, /usr/bin/python3) one after the other
and prints one Markdown table: sentences/s, GFLOP/s, the fraction of the
fp32 GEMM peak measured in the same run, and native / eager.

Eager is timed twice where it matters: with OpenBLAS as it configures itself
("eager"), and, on an AVX-512 CPU with OPENBLAS_CORETYPE unset, with
OPENBLAS_CORETYPE=SkylakeX ("eager*", OpenBLAS's best kernel here):
OpenBLAS 0.3.21 does not recognise some newer CPUs and falls back to its
generic Prescott kernel (~5x slower), which would flatter the ratio.

On a GPU (--device cuda, a CUDA libtorch build and its python3's torch via
--python), the native encoder runs on cuda:0 in fp32 / fp16 / bf16 against
eager on the same GPU, with matmul / softmax attention ("eager") and, on
torch >= 2.0, with F.scaled_dot_product_attention ("eager sdpa"); the peak
is cuBLAS's at::mm in the same dtype.

  scripts/bench_encoder_vs_eager.py [--shapes bge_small,bert_base] [--seqs 128] [--threads 1,2]
      [--dtypes fp32,bf16] [--min-time 2] [--build build] [--device cpu|cuda] [--python PYTHON]
"""
import argparse
import json
import os
import subprocess
import sys

SHAPES = ["bge_small", "bert_base", "bert_large"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def eager(args, env_extra, attention="matmul"):
    env = dict(os.environ, **env_extra)
    cmd = [args.python, os.path.join(ROOT, "scripts/bench_pytorch_eager.py"), "--format", "tsv",
           "--shapes", args.shapes, "--seqs", args.seqs, "--threads", args.threads, "--dtypes", args.dtypes,
           "--min-time", str(args.min_time), "--device", args.device, "--attention", attention]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        name, dt, seq, th, sps, gf = line.split("\t")
        rows[(name, dt, int(seq), int(th))] = float(sps)
    return rows


def print_header(columns, text_columns):
    """A Markdown table head: the first text_columns left-aligned, the numbers right-aligned."""
    print("| " + " | ".join(columns) + " |")
    print("| " + " | ".join("---" if i < text_columns else "---:" for i in range(len(columns))) + " |")


def run_bench(a, flt):
    bench = os.path.join(a.build, "tests/bench_encoder")
    r = subprocess.run([bench, f"--benchmark_filter={flt}", "--benchmark_format=json",
                        f"--benchmark_min_time={a.min_time}"], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        hint = " (the CUDA benchmarks exist only in a CUDA libtorch build with a visible GPU)" if a.device == "cuda" else ""
        sys.exit(f"{bench}: ran no benchmark matching {flt}{hint}: {r.stderr.strip()[-300:]}")
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="bge_small,bert_base")
    ap.add_argument("--seqs", default="128")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--python", default="/usr/bin/python3", help="the interpreter whose torch runs eager")
    a = ap.parse_args()
    if a.device == "cuda":
        return cuda_main(a)

    shape_ids = "|".join(str(SHAPES.index(s)) for s in a.shapes.split(","))
    seqs = "|".join(a.seqs.split(","))
    threads = "|".join(a.threads.split(","))
    bf16 = "|".join({"fp32": "0", "bf16": "1"}[d] for d in a.dtypes.split(","))
    flt = f"BM_gemm_peak|BM_encoder/shape:({shape_ids})/seq:({seqs})/threads:({threads})/bf16:({bf16})/"
    report = run_bench(a, flt)
    peak = {}  # (threads, label) -> GFLOP/s
    native = {}
    for b in report["benchmarks"]:
        if "error_message" in b:
            sys.exit(f"bench_encoder: {b['name']}: {b['error_message']}")
        parts = dict(p.split(":", 1) for p in b["name"].split("/")[1:] if ":" in p)
        if b["name"].startswith("BM_gemm_peak"):
            peak[(int(parts["threads"]), b["label"])] = b["GFLOP_per_s"]
        else:
            dt = "bf16" if parts["bf16"] == "1" else "fp32"
            native[(SHAPES[int(parts["shape"])], dt, int(parts["seq"]), int(parts["threads"]))] = b

    eager_plain = eager(a, {})
    eager_best = None
    cpu_flags = open("/proc/cpuinfo").read()
    if " avx512f " in cpu_flags and "OPENBLAS_CORETYPE" not in os.environ:
        eager_best = eager(a, {"OPENBLAS_CORETYPE": "SkylakeX"})

    print(f"CPU: {report['context'].get('host_name', '?')}, {report['context'].get('num_cpus')} cpus, "
          f"{report['context'].get('mhz_per_cpu')} MHz")
    print("\nGEMM peaks (4096 x 1024 x 1024), GFLOP/s:\n")
    print("| threads | kernel | GFLOP/s |\n| ---: | --- | ---: |")
    for (th, label), g in sorted(peak.items()):
        print(f"| {th} | {label} | {g:.1f} |")
    print("\nBERT forward, batch 32:\n")
    print_header(["model", "dtype", "seq", "threads", "native sent/s", "GFLOP/s", "% fp32 peak", "eager sent/s",
                  "native/eager"] + (["eager* sent/s", "native/eager*"] if eager_best else []), text_columns=2)
    for key in sorted(native, key=lambda k: (SHAPES.index(k[0]), k[1], k[2], k[3])):
        b = native[key]
        fp32_peak = max((g for (th, label), g in peak.items() if th == key[3] and label.endswith("fp32")
                         and not label.startswith("at::mm")), default=float("nan"))
        sps = b["sent_per_s"]
        row = (f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {sps:.2f} | {b['GFLOP_per_s']:.1f} | "
               f"{100 * b['GFLOP_per_s'] / fp32_peak:.0f}% | {eager_plain[key]:.2f} | {sps / eager_plain[key]:.2f} |")
        if eager_best:
            row += f" {eager_best[key]:.2f} | {sps / eager_best[key]:.2f} |"
        print(row)


def cuda_main(a):
    types = {"fp32": "0", "fp16": "1", "bf16": "2"}
    shape_ids = "|".join(str(SHAPES.index(s)) for s in a.shapes.split(","))
    dts = "|".join(types[d] for d in a.dtypes.split(","))
    flt = (f"BM_gemm_peak_cuda/dtype:({dts})/|"
           f"BM_encoder_cuda/shape:({shape_ids})/seq:({'|'.join(a.seqs.split(','))})/dtype:({dts})/")
    report = run_bench(a, flt)
    names = {v: k for k, v in types.items()}
    peak, native = {}, {}
    for b in report["benchmarks"]:
        if "error_message" in b:
            sys.exit(f"bench_encoder: {b['name']}: {b['error_message']}")
        parts = dict(p.split(":", 1) for p in b["name"].split("/")[1:] if ":" in p)
        dt = names[parts["dtype"]]
        if b["name"].startswith("BM_gemm_peak_cuda"):
            peak[dt] = b["GFLOP_per_s"]
        else:
            native[(SHAPES[int(parts["shape"])], dt, int(parts["seq"]), 0)] = b
    plain = eager(a, {})
    has_sdpa = subprocess.run([a.python, "-c", "import torch.nn.functional as F; "
                               "exit(0 if hasattr(F, 'scaled_dot_product_attention') else 1)"]).returncode == 0
    sdpa = eager(a, {}, "sdpa") if has_sdpa else None

    print(f"GPU run on {report['context'].get('host_name', '?')}\n\ncuBLAS GEMM peaks (8192^3, at::mm), GFLOP/s:\n")
    print("| dtype | GFLOP/s |\n| --- | ---: |")
    for dt, g in peak.items():
        print(f"| {dt} | {g:.0f} |")
    print("\nBERT forward on cuda:0, batch 32:\n")
    print_header(["model", "dtype", "seq", "native sent/s", "GFLOP/s", "% peak", "eager sent/s", "native/eager"] +
                 (["eager sdpa sent/s", "native/eager sdpa"] if sdpa else []), text_columns=2)
    for key in sorted(native, key=lambda k: (SHAPES.index(k[0]), k[1], k[2])):
        b = native[key]
        sps = b["sent_per_s"]
        row = (f"| {key[0]} | {key[1]} | {key[2]} | {sps:.0f} | {b['GFLOP_per_s']:.0f} | "
               f"{100 * b['GFLOP_per_s'] / peak.get(key[1], float('nan')):.0f}% | {plain[key]:.0f} | "
               f"{sps / plain[key]:.2f} |")
        if sdpa:
            row += f" {sdpa[key]:.0f} | {sps / sdpa[key]:.2f} |"
        print(row)


if __name__ == "__main__":
    main()
