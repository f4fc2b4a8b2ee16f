#!/usr/bin/env bash
# Runs embeval's test program, and the bundled model through `models
# inspect`, on an emulated AVX2-only CPU: QEMU's user-mode emulator with
# `-cpu Haswell` (AVX2 and FMA; no AVX-512, VNNI, AVX512-BF16 or AMX), so
# every fallback an older or smaller CPU takes runs under the same tests
# as the fast paths on this one ("correctness never depends on the
# instruction set"). QEMU 10 from bookworm-backports, a static binary,
# fetched with apt into a private folder (the system's packages are
# untouched). Not Debian 12's own QEMU 7.2: its AVX2 emulation gets
# oneDNN's gelu_tanh post-op wrong (errors of 0.9-2.4 where QEMU 10, and
# real hardware with ONEDNN_MAX_CPU_ISA=AVX2, give ~1e-7).
# QEMU is not the hardware: one known difference, ATen's bf16 GELU rounds
# some values differently under it (gelu(-5.5) gives -0 against -1.6e-7
# natively with ATEN_CPU_CAPABILITY=avx2); no test here depends on that.
# Timings under emulation mean nothing. The tests run in as many shards as
# there are CPUs (about 11 CPU-minutes in all on a 2-core Zen 4).
# QEMU_CPU=Nehalem (SSE4.2, no AVX) runs it as an older CPU: the kernels'
# baseline clones (cpu_dispatch.h's EMBEVAL_CLONES "default").
#   usage: scripts/portability/avx2_emulation_check.sh [build dir, default build] [work dir, default /var/tmp/embeval-avx2]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
work=${2:-/var/tmp/embeval-avx2}
tests=$build/tests/embeval_tests
[ -x "$tests" ] || { echo "avx2_emulation_check: no $tests (build first: ./scripts/setup.sh)" >&2; exit 1; }

. "$src/scripts/portability/private_apt.sh"
if ! ls "$work"/debs/qemu-user_*.deb >/dev/null 2>&1; then
  private_apt_download "$work" "deb http://deb.debian.org/debian bookworm-backports main" qemu-user
fi
qemu=$work/root/usr/bin/qemu-x86_64
if [ ! -x "$qemu" ]; then
  rm -rf "$work/root" && mkdir -p "$work/root"
  dpkg -x "$(ls "$work"/debs/qemu-user_*.deb | tail -1)" "$work/root"
fi
"$qemu" --version | head -1
cpu=${QEMU_CPU:-Haswell}
emulate() { "$qemu" -cpu "$cpu" "$@" 2> >(grep -v "TCG doesn't support requested feature" >&2); }

# The emulated CPU has no bf16 instructions: the bf16 model must say it runs
# its Linears on the widened fp32 fallback (packed_linear.h).
kernel=$(emulate "$build/embeval" models inspect "$src/models/embeval-small-zh" --dtype bf16 | sed -n 's/^linear_kernel: *//p')
echo "bf16 linear_kernel under -cpu $cpu: $kernel"
case "$kernel" in
  *widened*) ;;
  *) echo "avx2_emulation_check: expected the widened fp32 fallback; does the emulated CPU ($cpu) lack bf16?" >&2; exit 1 ;;
esac

. "$src/scripts/portability/gtest_shards.sh"
status=0
run_gtest_shards "$build" "$work/logs" emulate "$tests" --gtest_brief=1 || status=1
echo "avx2_emulation_check: $GTEST_PASSED tests passed, $GTEST_SKIPPED skipped (instruction sets this CPU lacks, or CUDA) in $GTEST_SHARDS shards; logs in $work/logs"
if [ "$status" -ne 0 ]; then
  echo "avx2_emulation_check: FAILED under qemu-x86_64 -cpu $cpu" >&2
  exit 1
fi
echo "avx2_emulation_check: OK (-cpu $cpu)"
