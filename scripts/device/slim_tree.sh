#!/usr/bin/env bash
# The device tool carries the working tree and .deps together under 64 MiB;
# the tree alone is ~61 MB. This moves the full-size task data (not the
# -mini variants the tests and cmteb-mini use, nor ThuNewsClusteringS2S,
# which a parity test reads) to $STASH for the call; --restore moves it
# back. gpu_session.sh skips the one test that loads every full-size task
# when the files are away.
#   usage: scripts/device/slim_tree.sh [--restore]
set -euo pipefail
cd "$(dirname "$0")/../.."
stash=${STASH:-/tmp/embeval-slim}
if [[ ${1:-} == --restore ]]; then
  [[ -d $stash ]] || { echo "nothing stashed in $stash"; exit 0; }
  (cd "$stash" && find . -type f -print0) | while IFS= read -r -d '' f; do
    mkdir -p "$(dirname "$f")" && mv "$stash/$f" "$f"
  done
  rm -rf "$stash"
  git status --short datasets
  exit 0
fi
git ls-files datasets/cmteb | grep -v '/mini/' | grep -E '\.(jsonl|tsv)$' | grep -v '^datasets/cmteb/ThuNewsClusteringS2S/' |
  while IFS= read -r f; do
    mkdir -p "$stash/$(dirname "$f")" && mv "$f" "$stash/$f"
  done
echo "moved to $stash: $(du -sh "$stash" | cut -f1); tree now $(git ls-files | xargs du -cb 2>/dev/null | tail -1 | cut -f1) bytes"
