#!/usr/bin/env bash
# Runs embeval's test program with its AMX kernels on a software model of
# the tile unit (runners/kernels/amx_emulation.h), on a CPU without AMX:
# the tile paths of the bf16 GEMM (AmxBf16Gemm), the int8 GEMM (AmxS8Gemm,
# under SmoothQuant's Int8Linear and the weight-only kernels) and the bf16
# attention then run under the same tests as the AVX512-BF16 / VNNI paths
# that this CPU runs natively, against the same float64 / int64
# references. The build also has AddressSanitizer and UBSan: the model
# touches exactly the bytes each tile load and store would, so a tile that
# reads past its buffer is reported, where the hardware would read it
# silently.
# What it cannot check: speed (an emulated tile instruction is thousands of
# scalar operations), and TDPBF16PS's rounding where the hardware adds in
# another order than the SDM's pseudocode (no test depends on that order).
# Needs GCC and a CPU with AVX-512 BF16 (the kernels' vector code around
# the tile instructions is AVX-512: Zen 4 or later, Cooper Lake or later).
# About 30 minutes on 2 cores, most of it the sanitized build (the tests:
# 3 minutes). The test command runs the kernels' own tests this way without
# sanitizers (embeval_amx_model_tests).
#   usage: scripts/portability/amx_emulation_check.sh [build dir, default /var/tmp/embeval-amx] [gtest filter]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-/var/tmp/embeval-amx}
filter=${2:-*}
grep -qw avx512_bf16 /proc/cpuinfo || { echo "amx_emulation_check: this CPU has no AVX512-BF16; the AMX kernels' vector code needs it" >&2; exit 1; }
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEMBEVAL_AMX_EMULATE=ON -DEMBEVAL_SANITIZE=ON \
  -DEMBEVAL_BUILD_BENCHMARKS=OFF >/dev/null 2> >(grep -v "EMBEVAL_AMX_EMULATE\|software model\|^CMake Warning\|^$\|not timings" >&2)
cmake --build "$build" -j "$(nproc)" --target embeval_tests embeval
tests=$build/tests/embeval_tests

# The build must say it runs the tiles: the bf16 Linears of the bundled
# model name the AMX kernel.
kernel=$("$build/embeval" models inspect "$src/models/embeval-small-zh" --dtype bf16 2>/dev/null | sed -n 's/^linear_kernel: *//p')
echo "bf16 linear_kernel in the emulated build: $kernel"
case "$kernel" in
  amx:*) ;;
  *) echo "amx_emulation_check: expected the AMX kernel (amx:...), got '$kernel'" >&2; exit 1 ;;
esac

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} LSAN_OPTIONS=suppressions=$src/tests/fuzz/lsan.supp
. "$src/scripts/portability/gtest_shards.sh"
logs=$build/amx-emulation-logs
status=0
run_gtest_shards "$build" "$logs" "$tests" --gtest_brief=1 --gtest_filter="$filter" || status=1
grep -h "ERROR: AddressSanitizer\|runtime error:\|AMX emulation:" "$logs"/shard*.txt | sort -u || true
echo "amx_emulation_check: $GTEST_PASSED tests passed, $GTEST_SKIPPED skipped in $GTEST_SHARDS shards; logs in $logs"
if grep -q "runtime error:" "$logs"/shard*.txt; then status=1; fi
if [ "$status" -ne 0 ]; then
  echo "amx_emulation_check: FAILED with the AMX kernels on the software model" >&2
  exit 1
fi
echo "amx_emulation_check: OK"
