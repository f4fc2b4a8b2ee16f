#!/usr/bin/env bash
# Enforces the folder layering, arrows only downwards:
#   cli -> {tasks, runners, reports} -> harness -> datasets
# with no include sideways between tasks, runners and reports. Inside runners/
# each room is a layer too: the backends and the spec factory at runners/
# stand on quant/, which stands on bert/, which stands on checkpoint/,
# tokenizers/ and kernels/ (those three include none of each other). A project include
# ("folder/file.h") that reaches sideways or upwards is an error naming the
# file and line; a source file in a folder without a rule here is an error too,
# so a new room must say where it stands.
set -uo pipefail
cd "$(dirname "$0")/.."

# The room a path belongs to: runners/<sub> for files in a runners subfolder,
# otherwise its top folder ("runners" alone means runners/ top-level files).
room_of() {
  local p=$1
  if [[ "$p" == runners/*/* ]]; then
    p=${p#runners/}
    echo "runners/${p%%/*}"
  else
    echo "${p%%/*}"
  fi
}
# What each room may include, itself included.
allowed() {
  case "$1" in
    datasets) echo "datasets" ;;
    harness) echo "datasets harness" ;;
    tasks) echo "datasets harness tasks" ;;
    reports) echo "datasets harness reports" ;;
    runners/checkpoint) echo "datasets harness runners/checkpoint" ;;
    runners/tokenizers) echo "datasets harness runners/tokenizers" ;;
    runners/kernels) echo "datasets harness runners/kernels" ;;
    runners/bert) echo "datasets harness runners/checkpoint runners/tokenizers runners/kernels runners/bert" ;;
    runners/quant) echo "datasets harness runners/checkpoint runners/tokenizers runners/kernels runners/bert runners/quant" ;;
    runners/train) echo "datasets harness runners/checkpoint runners/tokenizers runners/train" ;;
    runners) echo "datasets harness runners/checkpoint runners/tokenizers runners/kernels runners/bert runners/quant runners/train runners" ;;
    cli) echo "datasets harness tasks reports runners/checkpoint runners/tokenizers runners/kernels runners/bert runners/quant runners/train runners cli" ;;
    *) return 1 ;;
  esac
}
status=0
checked=0
while IFS= read -r file; do
  room=$(room_of "$file")
  if ! rule=$(allowed "$room"); then
    echo "$file: folder \"$room\" has no layering rule in tests/check_layering.sh; add one"
    status=1
    continue
  fi
  checked=$((checked + 1))
  while IFS=: read -r line inc; do
    target=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"$inc")
    [[ "$target" == */* ]] || continue  # generated or local headers
    troom=$(room_of "$target")
    ok=0
    for a in $rule; do [ "$troom" = "$a" ] && ok=1; done
    if [ $ok -eq 0 ]; then
      echo "$file:$line: includes \"$target\" ($troom); $room may include only: $rule"
      status=1
    fi
  done < <(grep -n '^#include "' "$file")
done < <(find datasets harness tasks runners reports cli -name '*.h' -o -name '*.cpp' -o -name '*.inc' | sort)
[ $checked -gt 100 ] || { echo "only $checked files checked"; status=1; }
[ $status -eq 0 ] && echo "layering: $checked files, no include sideways or upwards"
exit $status
