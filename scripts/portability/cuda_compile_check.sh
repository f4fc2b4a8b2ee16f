#!/usr/bin/env bash
# Compiles every embeval source against a CUDA libtorch 2.x without a GPU:
# Debian 13's libtorch-cuda-dev 2.6 (contrib), fetched with apt into a private
# folder (the system's packages are untouched), and the CUDA toolkit found
# here (CUDA_HOME, default /usr/local/cuda). The CUDA-only code
# (EMBEVAL_HAVE_C10_CUDA: the allocator's peak memory) is compiled this way,
# and every program is linked with only the libraries' own unresolved symbols
# ignored (Debian 13's libtorch needs its newer glibc and sonames), so a
# symbol embeval uses that the CUDA libtorch lacks still fails the link. The
# programs cannot run here; that is scripts/device/gpu_session.sh's job.
#   usage: scripts/portability/cuda_compile_check.sh [work dir, default /var/tmp/embeval-cuda-compile]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-/var/tmp/embeval-cuda-compile}
cuda=${CUDA_HOME:-/usr/local/cuda}
[ -x "$cuda/bin/nvcc" ] || { echo "cuda_compile_check: no CUDA toolkit at $cuda (set CUDA_HOME)" >&2; exit 1; }
. "$src/scripts/portability/private_apt.sh"
if ! ls "$work"/debs/libtorch-cuda-dev_*.deb >/dev/null 2>&1; then
  private_apt_download "$work" "deb http://deb.debian.org/debian trixie main contrib" libtorch-cuda-dev libtorch-cuda-2.6
fi
root=$work/root
if [ ! -d "$root/usr/include/c10/cuda" ]; then
  rm -rf "$root" && mkdir -p "$root"
  for f in "$work"/debs/*.deb; do dpkg -x "$f" "$root"; done
fi
# TorchConfig.cmake looks in $TORCH_INSTALL_PREFIX/{include,lib}; Debian keeps the libraries one level down.
mkdir -p "$work/prefix"
ln -sfn "$root/usr/include" "$work/prefix/include"
ln -sfn "$root/usr/lib/x86_64-linux-gnu" "$work/prefix/lib"
# CUDA >= 12.9 has no libnvToolsExt (NVTX 3 is header-only) but torch 2.6's config links the target.
cat > "$work/pre.cmake" <<'CMAKE'
if(NOT TARGET CUDA::nvToolsExt)
  add_library(CUDA::nvToolsExt INTERFACE IMPORTED)
endif()
CMAKE
build=$work/build
ignore=-Wl,--unresolved-symbols=ignore-in-shared-libs
TORCH_INSTALL_PREFIX=$work/prefix cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DEMBEVAL_WITH_ONEDNN=OFF -DCMAKE_PREFIX_PATH="$root/usr/lib/x86_64-linux-gnu/cmake" \
  -DCMAKE_LIBRARY_PATH="$work/prefix/lib" -DCUDAToolkit_ROOT="$cuda" \
  -DCMAKE_PROJECT_TOP_LEVEL_INCLUDES="$work/pre.cmake" -DCMAKE_EXE_LINKER_FLAGS="$ignore" \
  -DCMAKE_MODULE_LINKER_FLAGS="$ignore" -DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST \
  >"$work/configure.log" 2>&1 ||
  { tail -30 "$work/configure.log"; exit 1; }
grep -q "^TORCH_LIBRARY:.*=$work/prefix/lib/libtorch.so" "$build/CMakeCache.txt" ||
  { echo "cuda_compile_check: CMake did not pick the fetched libtorch" >&2; grep "^TORCH_LIBRARY:" "$build/CMakeCache.txt" >&2; exit 1; }
grep -q EMBEVAL_HAVE_C10_CUDA "$build/build.ninja" ||
  { echo "cuda_compile_check: c10_cuda not found, the CUDA-only code would not be compiled" >&2; exit 1; }
echo "cuda_compile_check: building against $(cd "$work/debs" && ls libtorch-cuda-dev_*.deb)"
(cd "$build" && ninja -k 0) >"$work/build.log" 2>&1 ||
  { grep -E "error|FAILED|undefined reference" "$work/build.log" | grep -v "rpath-link" | head -40; exit 1; }
programs=$(cd "$build" && find . -maxdepth 2 -type f -executable \( -name embeval -o -name 'embeval_*' -o -name 'bench_*' \) \
  -printf '%f ')
echo "cuda_compile_check: every source compiled, every program linked: $programs(log: $work/build.log)"
