#!/usr/bin/env bash
# Everything a GPU session checks, in one call (the device is lent for
# minutes, and each start costs some of them):
#   1. scripts/device/cuda_check.sh: build against the machine's CUDA
#      libtorch 2.x and run the whole test suite (CUDA tests included);
#   2. the CUDA benchmark against PyTorch eager on the same GPU
#      (scripts/bench_encoder_vs_eager.py --device cuda);
#   3. cmteb-mini end to end on cuda in fp32 and fp16 with the bundled tiny
#      checkpoint, with and without the batch-1 latency sampling, and the
#      per-task timings from SQLite (why fp16 ran 8x slower in session 1);
#   4. the quantized variants on cuda (ATen kernels, _int_mm for W8A8) next
#      to fp16, one --quant list on the bundled default model, calibrated on
#      cmteb-mini: scores, cosine to fp32 and speed from SQLite. Not in the
#      default steps (the first three fill a 600 s call): STEPS="check quant".
# Logs go to $OUT (the device tool returns that folder), else ./gpu-out.
#
# Here first: scripts/device/fetch_debs.sh (fills .deps/debs). Then, with the
# device tool: command "bash scripts/device/gpu_session.sh", carry [".deps"].
# The working tree and carried paths travel together under 64 MiB: run
# scripts/device/slim_tree.sh before the call and `slim_tree.sh --restore`
# after it. The steps are capped to fit one 600 s call (timeout_s 600).
#   env: STEPS="check bench e2e quant" (default: the first three), BENCH_SHAPES, BENCH_SEQS, QUANTS;
#   a dry run of the e2e step on a CPU: STEPS=e2e BUILD_DIR=build DEVICE=cpu DTYPES=fp32
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-gpu-out}
mkdir -p "$out"
steps=${STEPS:-check bench e2e}
build=${BUILD_DIR:-build-cuda}
status=0
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$out/gpu.txt"

if [[ " $steps " == *" check "* ]]; then
  echo "== build + ctest"
  skip=()
  [[ -f datasets/cmteb/ATEC/test.jsonl ]] || skip=(-E '^BundledData\.EveryTaskLoadsWithDeclaredSizes$')  # slimmed tree
  timeout 330 bash scripts/device/cuda_check.sh "${skip[@]}" >"$out/check.log" 2>&1
  rc=$?
  tail -n 40 "$out/check.log"
  ((rc == 0)) || status=1
fi
if [[ ! -x $build/embeval ]]; then
  echo "no $build/embeval: the build failed; see check.log"
  exit 1
fi
export LD_LIBRARY_PATH=/tmp/embeval-deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}

if [[ " $steps " == *" bench "* ]]; then
  echo "== CUDA benchmark vs eager"
  timeout 150 python3 scripts/bench_encoder_vs_eager.py --device cuda --build "$build" --python python3 \
    --shapes "${BENCH_SHAPES:-bge_small,bert_base,bert_large}" --seqs "${BENCH_SEQS:-32,128,512}" \
    --dtypes fp32,fp16,bf16 --min-time 0.2 2>&1 | tee "$out/bench.md"
  ((PIPESTATUS[0] == 0)) || status=1
fi

if [[ " $steps " == *" e2e "* ]]; then
  echo "== cmteb-mini on ${DEVICE:-cuda}"
  model=tests/data/checkpoints/tiny-mean-dense-normalize
  for dtype in ${DTYPES:-fp32 fp16}; do
    for samples in 0 200; do
      db="$out/e2e-$dtype-$samples.sqlite"
      start=$(date +%s%N)
      timeout 30 "$build/embeval" run --quiet --model "hf:$model" --device "${DEVICE:-cuda}" --dtype "$dtype" \
        --suite cmteb-mini --latency-samples "$samples" --db "$db" >"$out/e2e-$dtype-$samples.log" 2>&1 || status=1
      echo "$dtype latency-samples=$samples: $((($(date +%s%N) - start) / 1000000)) ms wall"
      python3 - "$db" <<'EOF' || status=1
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
cols = "t.name, round(tm.encode_seconds, 3), round(tm.evaluate_seconds, 3), round(tm.items_per_second), tm.peak_device_bytes, round(tm.latency_p50_ms, 2)"
q = f"SELECT {cols} FROM timings tm JOIN results r ON r.id = tm.result_id JOIN tasks t ON t.id = r.task_id"
try:
    for row in con.execute(q):
        print("   ", *row)
except sqlite3.Error as e:
    print("    (timings query failed:", e, ")")
EOF
    done
  done
fi
if [[ " $steps " == *" quant "* ]]; then
  echo "== quantized variants on ${DEVICE:-cuda}"
  db="$out/quant.sqlite"
  timeout 120 "$build/embeval" run --quiet --model models/embeval-small-zh --device "${DEVICE:-cuda}" \
    --quant "${QUANTS:-fp32,fp16,fp16+wo-int8,fp16+wo-int4-g128,bf16+w8a8,fp16+sq-w8a8-a0.5,fp16+gptq-int4-g128,fp16+awq-int4-g128}" \
    --suite cmteb-mini --calib-samples 64 --db "$db" >"$out/quant.log" 2>&1 || { status=1; tail -5 "$out/quant.log"; }
  "$build/embeval" report --db "$db" --format md --out "$out/quant.md" >/dev/null 2>&1 && grep -iA14 "quantiz" "$out/quant.md" | head -40
fi
exit $status
