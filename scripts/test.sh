#!/usr/bin/env bash
# The test command: set up (install, configure, build) and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
build_dir=${EMBEVAL_BUILD_DIR:-build}
cd "$build_dir"
ctest --output-on-failure -j "$(nproc)" "$@"
