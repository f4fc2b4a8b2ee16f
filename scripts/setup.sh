#!/usr/bin/env bash
# Installs embeval's build dependencies from Debian's packages (idempotent:
# apt runs only when something is missing), checks that libtorch will use
# OpenBLAS, then configures and builds into build/ (EMBEVAL_BUILD_DIR;
# EMBEVAL_CMAKE_ARGS adds configure options).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build git
  libtorch-dev libopenblas0-openmp      # libtorch; OpenBLAS, or libtorch falls back to the reference BLAS (~50x slower)
  libsqlite3-dev libfmt-dev libboost-program-options-dev nlohmann-json3-dev libutf8proc-dev libssl-dev
  libsentencepiece-dev                  # XLM-R's tokenizer
  libdnnl-dev                           # oneDNN GEMMs for the encoder (OpenBLAS 0.3.21 misreads new CPUs)
  libgtest-dev libbenchmark-dev
  chromium                              # headless browser for the HTML leaderboard test (ctest -L browser)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# libblas.so.3 is an alternative; make sure it is OpenBLAS, not the reference BLAS.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
if [[ "$blas" != *openblas* ]]; then
  openblas=/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3
  if [ "$(id -u)" -eq 0 ] && [ -e "$openblas" ]; then
    update-alternatives --set libblas.so.3-x86_64-linux-gnu "$openblas"
  else
    echo "setup: warning: libblas.so.3 -> $blas is not OpenBLAS; timings will be ~50x slow" >&2
  fi
fi

build_dir=${EMBEVAL_BUILD_DIR:-build}
# EMBEVAL_CMAKE_ARGS: extra configure options, e.g. -DEMBEVAL_WITH_ONEDNN=OFF.
# shellcheck disable=SC2086
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release ${EMBEVAL_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
echo "setup: built $build_dir/embeval"
