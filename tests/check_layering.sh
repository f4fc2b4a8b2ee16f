#!/usr/bin/env bash
# Enforces the folder layering: datasets <- harness <- {tasks, runners,
# reports} <- harness/cli. A project include ("folder/file.h") that reaches
# sideways or upwards is an error naming the file and line.
set -uo pipefail
cd "$(dirname "$0")/.."
allowed() {
  case "$1" in
    datasets) echo "datasets" ;;
    harness) echo "datasets harness" ;;
    tasks) echo "datasets harness tasks" ;;
    runners) echo "datasets harness runners" ;;
    reports) echo "datasets harness reports" ;;
    harness/cli) echo "datasets harness tasks runners reports" ;;
  esac
}
status=0
checked=0
for layer in datasets harness tasks runners reports harness/cli; do
  depth=2
  while IFS= read -r file; do
    # harness/cli is its own layer; skip its files when checking harness.
    if [ "$layer" = harness ] && [[ "$file" == harness/cli/* ]]; then continue; fi
    checked=$((checked + 1))
    while IFS=: read -r line inc; do
      target=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"$inc")
      top=${target%%/*}
      [[ "$target" == */* ]] || continue  # generated or local headers
      ok=0
      for a in $(allowed "$layer"); do [ "$top" = "${a%%/*}" ] && ok=1; done
      if [ "$layer" != harness/cli ] && [[ "$target" == harness/cli/* ]]; then ok=0; fi
      if [ $ok -eq 0 ]; then
        echo "$file:$line: includes \"$target\"; $layer may include only: $(allowed "$layer")"
        status=1
      fi
    done < <(grep -n '^#include "' "$file" | sed -E 's/^([0-9]+):/\1:/')
  done < <(find "$layer" -maxdepth $depth -name '*.h' -o -maxdepth $depth -name '*.cpp' | sort)
done
[ $checked -gt 40 ] || { echo "only $checked files checked"; status=1; }
[ $status -eq 0 ] && echo "layering: $checked files, no sideways includes"
exit $status
