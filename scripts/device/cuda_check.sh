#!/usr/bin/env bash
# On the GPU machine: build embeval against its CUDA libtorch 2.x (python3's
# torch) with the Debian -dev packages carried in .deps/debs (see
# fetch_debs.sh), then run the test suite and the CUDA checks.
#   usage: scripts/device/cuda_check.sh [ctest args]
set -euo pipefail
cd "$(dirname "$0")/../.."
prefix=/tmp/embeval-deps
rm -rf "$prefix" && mkdir -p "$prefix"
for f in .deps/debs/*.deb; do dpkg -x "$f" "$prefix"; done
export EMBEVAL_DEPS_PREFIX=$prefix
export LD_LIBRARY_PATH=$prefix/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
python=${PYTHON:-python3}
torch_prefix=$($python -c 'import torch; print(torch.utils.cmake_prefix_path)')
$python -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available() and torch.cuda.get_device_name(0))'
build=${BUILD_DIR:-build-cuda}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEMBEVAL_WITH_ONEDNN=OFF -DCMAKE_PREFIX_PATH="$torch_prefix" 2>&1 | grep -vE '^-- (Looking|Performing|Found|Check)' || true
cmake --build "$build" -j "$(nproc)"
cd "$build"
ctest --output-on-failure -j 4 "$@"
