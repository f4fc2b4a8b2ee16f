#!/usr/bin/env bash
# Downloads the Debian -dev packages the CUDA build check needs into
# .deps/debs (ignored by git, carried to the GPU machine, which has no
# package registry). libtorch comes from that machine's python3 torch.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .deps/debs
cd .deps/debs
apt-get download libfmt-dev libfmt9 nlohmann-json3-dev libsqlite3-dev libsqlite3-0 libgtest-dev \
  libbenchmark-dev libbenchmark1debian libutf8proc-dev libutf8proc2 libssl-dev \
  libsentencepiece-dev libsentencepiece0 \
  libboost1.74-dev libboost-program-options1.74-dev libboost-program-options1.74.0 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
ls -1 "$PWD"
