#!/usr/bin/env bash
# Installs embeval's build dependencies from Debian's packages (idempotent:
# apt runs only when something is missing), checks that libtorch will use
# OpenBLAS, then configures and builds into build/ (EMBEVAL_BUILD_DIR;
# EMBEVAL_CMAKE_ARGS adds configure options).
# Every package a command needs is named here, not left to arrive as some
# other package's dependency or recommendation (apt runs with
# --no-install-recommends): scripts/portability/clean_root_check.sh, which CI
# runs, checks this list on a bare debootstrap root.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build git
  libtorch-dev libopenblas0-openmp      # libtorch; OpenBLAS, or libtorch falls back to the reference BLAS (~50x slower)
  libsqlite3-dev libfmt-dev libboost-program-options-dev nlohmann-json3-dev libutf8proc-dev libssl-dev
  libsentencepiece-dev                  # XLM-R's tokenizer
  libdnnl-dev                           # oneDNN GEMMs for the encoder (OpenBLAS 0.3.21 misreads new CPUs)
  ocl-icd-opencl-dev                    # dnnl-config.cmake requires OpenCL; libdnnl-dev only recommends it
  libgtest-dev libbenchmark-dev
  chromium                              # headless browser for the HTML leaderboard test (ctest -L browser)
  python3                               # tests/cli/test_cli.sh checks outputs with Python's json and sqlite3
)
# Root runs apt itself; anyone else goes through sudo.
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ -n "$sudo" ] && ! command -v sudo >/dev/null; then
    echo "setup: needs Debian packages ${missing[*]}: run as root, or install sudo" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  # sudo resets the environment: pass DEBIAN_FRONTEND through env.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# libblas.so.3 is an alternative; make sure it is OpenBLAS, not the reference BLAS.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
if [[ "$blas" != *openblas* ]]; then
  openblas=/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3
  if [ -e "$openblas" ] && { [ -z "$sudo" ] || command -v sudo >/dev/null; }; then
    $sudo update-alternatives --set libblas.so.3-x86_64-linux-gnu "$openblas"
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
