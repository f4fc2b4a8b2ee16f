# Sourced by the portability checks that run the whole test program (AVX2
# under QEMU, AMX on the tile model): one shard per CPU, in parallel.
#   run_gtest_shards DIR LOGS COMMAND [ARGS...]
# runs COMMAND in DIR once per shard (GTEST_TOTAL_SHARDS / GTEST_SHARD_INDEX
# exported; COMMAND may be a shell function), each shard's output in
# LOGS/shardN.txt; prints the failed tests, sets GTEST_PASSED, GTEST_SKIPPED
# and GTEST_SHARDS, and returns non-zero if any shard failed.
run_gtest_shards() {
  local dir=$1 logs=$2
  shift 2
  local i status=0 pids=()
  GTEST_SHARDS=$(nproc)
  rm -rf "$logs" && mkdir -p "$logs"
  for ((i = 0; i < GTEST_SHARDS; i++)); do
    (cd "$dir" && export GTEST_TOTAL_SHARDS=$GTEST_SHARDS GTEST_SHARD_INDEX=$i && "$@" >"$logs/shard$i.txt" 2>&1) &
    pids+=($!)
  done
  for ((i = 0; i < GTEST_SHARDS; i++)); do
    wait "${pids[$i]}" || status=1
  done
  grep -h "^\[  FAILED  \]" "$logs"/shard*.txt | sort -u || true
  GTEST_PASSED=$(grep -h "^\[  PASSED  \]" "$logs"/shard*.txt | awk '{n += $4} END {print n + 0}')
  GTEST_SKIPPED=$(grep -h "^\[  SKIPPED \] [0-9]" "$logs"/shard*.txt | awk '{n += $4} END {print n + 0}')
  return "$status"
}
