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

  scripts/bench_encoder_vs_eager.py [--shapes bge_small,bert_base] [--seqs 128] [--threads 1,2]
      [--dtypes fp32,bf16] [--min-time 2] [--build build]
"""
import argparse
import json
import os
import subprocess
import sys

SHAPES = ["bge_small", "bert_base", "bert_large"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def eager(args, env_extra):
    env = dict(os.environ, **env_extra)
    cmd = ["/usr/bin/python3", os.path.join(ROOT, "scripts/bench_pytorch_eager.py"), "--format", "tsv",
           "--shapes", args.shapes, "--seqs", args.seqs, "--threads", args.threads, "--dtypes", args.dtypes,
           "--min-time", str(args.min_time)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        name, dt, seq, th, sps, gf = line.split("\t")
        rows[(name, dt, int(seq), int(th))] = float(sps)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="bge_small,bert_base")
    ap.add_argument("--seqs", default="128")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()

    shape_ids = "|".join(str(SHAPES.index(s)) for s in a.shapes.split(","))
    seqs = "|".join(a.seqs.split(","))
    threads = "|".join(a.threads.split(","))
    bf16 = "|".join({"fp32": "0", "bf16": "1"}[d] for d in a.dtypes.split(","))
    flt = f"BM_gemm_peak|BM_encoder/shape:({shape_ids})/seq:({seqs})/threads:({threads})/bf16:({bf16})/"
    bench = os.path.join(a.build, "tests/bench_encoder")
    out = subprocess.run([bench, f"--benchmark_filter={flt}", "--benchmark_format=json",
                          f"--benchmark_min_time={a.min_time}"], check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
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
    head = "| model | dtype | seq | threads | native sent/s | GFLOP/s | % fp32 peak | eager sent/s | native/eager |"
    sep = "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    if eager_best:
        head += " eager* sent/s | native/eager* |"
        sep += " ---: | ---: |"
    print(head + "\n" + sep)
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


if __name__ == "__main__":
    main()
