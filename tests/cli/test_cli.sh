#!/usr/bin/env bash
# End-to-end checks of the embeval command: the README's main job, resume
# without duplicates, --force, reports, and one-line errors with exit status 2
# for bad input, with nothing recorded before lost.
set -uo pipefail
: "${EMBEVAL:?path to the embeval binary}"
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
failures=0
passes=0

ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; failures=$((failures + 1)); }
rows() { sqlite3 "${2:-results.sqlite}" "$1" 2>/dev/null || python3 - "$1" "${2:-results.sqlite}" <<'PY'
import sqlite3, sys
print(sqlite3.connect(sys.argv[2]).execute(sys.argv[1]).fetchone()[0])
PY
}
# expect_error "what" "fragment" cmd...: exit status 2 and exactly one error
# line, the last one on stderr (progress lines may precede it), containing fragment.
expect_error() {
  local what=$1 fragment=$2
  shift 2
  "$@" >out.txt 2>err.txt
  local rc=$?
  local errors last
  errors=$(grep -c 'error:' err.txt)
  last=$(tail -n 1 err.txt)
  if [ "$rc" -ne 2 ]; then bad "$what: exit status $rc, expected 2 ($(cat err.txt))"; return; fi
  if [ "$errors" -ne 1 ] || [[ "$last" != *error:* ]]; then bad "$what: expected one error line, last: $(cat err.txt)"; return; fi
  if [[ "$last" != *"$fragment"* ]]; then bad "$what: '$fragment' not in: $last"; return; fi
  ok
}

# 1. The main job, as the README's first command runs it: default model on
# the mini suite, then the Markdown and the HTML leaderboard, each report
# saying where it wrote its file.
if "$EMBEVAL" run --suite cmteb-mini --quiet >table.md 2>log.txt; then ok; else bad "run --suite cmteb-mini: $(cat log.txt)"; fi
n=$(rows "SELECT COUNT(*) FROM results")
[ "$n" = 14 ] && ok || bad "expected 14 results, got $n"
grep -q "| LCQMC-mini | STS | cosine_spearman |" table.md && ok || bad "run table lacks LCQMC-mini: $(cat table.md)"
[ "$(rows "SELECT status FROM runs ORDER BY id DESC LIMIT 1")" = finished ] && ok || bad "run not marked finished"
"$EMBEVAL" report --format md --out leaderboard.md 2>md_log.txt && "$EMBEVAL" report --format html --out leaderboard.html 2>html_log.txt || bad "README reports failed: $(cat md_log.txt html_log.txt)"
grep -qx "wrote $work/leaderboard.md" md_log.txt && ok || bad "md report did not say where: $(cat md_log.txt)"
grep -qx "wrote $work/leaderboard.html" html_log.txt && ok || bad "html report did not say where: $(cat html_log.txt)"
grep -q '<table id="t-summary"' leaderboard.html && grep -q "LCQMC-mini" leaderboard.html && grep -q '</html>' leaderboard.html && ok || bad "html leaderboard content"

# 2. Rerunning resumes: every task skipped, no duplicate rows.
"$EMBEVAL" run --suite cmteb-mini >/dev/null 2>log.txt || bad "rerun failed: $(cat log.txt)"
[ "$(grep -c 'already recorded, skipped' log.txt)" = 14 ] && ok || bad "rerun did not skip all tasks: $(cat log.txt)"
[ "$(rows "SELECT COUNT(*) FROM results")" = 14 ] && ok || bad "rerun duplicated rows"

# 3. --force re-evaluates one task and keeps history; the report shows one row.
"$EMBEVAL" run --task-dir "$src/datasets/cmteb/LCQMC/mini" --force --quiet >/dev/null 2>&1 || bad "--force failed"
[ "$(rows "SELECT COUNT(*) FROM results")" = 15 ] && ok || bad "--force did not add a row"

# 4. Reports.
"$EMBEVAL" report --format md --out lb.md 2>/dev/null || bad "report md failed"
grep -q "## Summary" lb.md && grep -q "char-ngram-tfidf" lb.md && grep -q "LCQMC-mini" lb.md && ok || bad "markdown report content"
"$EMBEVAL" report --format md 2>/dev/null | grep -q "^| 1 | char-ngram-tfidf |" && ok || bad "markdown to stdout"
"$EMBEVAL" report --format csv --out scores.csv 2>/dev/null || bad "report csv failed"
python3 - scores.csv <<'PY' && ok || bad "CSV report"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
assert {r["task"] for r in rows} >= {"LCQMC-mini", "CMRC2018Retrieval-mini"}, len(rows)
main = [r for r in rows if r["is_main"] == "1"]
assert len(main) == 14 and all(0 <= float(r["value"]) <= 1 for r in main), main[:2]
assert open(sys.argv[1], "rb").read().count(b"\r\n") == len(rows) + 1
PY
"$EMBEVAL" report --format mteb --out mteb 2>/dev/null || bad "report mteb failed"
[ "$(find mteb -name '*-mini.json' | wc -l)" = 14 ] && ok || bad "expected 14 MTEB task files: $(find mteb)"
python3 - mteb <<'PY' && ok || bad "MTEB JSON layout"
import json, pathlib, sys
files = list(pathlib.Path(sys.argv[1]).glob("*/*/LCQMC-mini.json"))
assert len(files) == 1, files
j = json.load(open(files[0]))
assert set(j) == {"dataset_revision", "task_name", "mteb_version", "scores", "evaluation_time", "kg_co2_emissions"}, j.keys()
s = j["scores"]["test"][0]
assert s["hf_subset"] == "default" and s["languages"] == ["cmn-Hans"], s
assert s["main_score"] == s["cosine_spearman"] and 0 < s["main_score"] < 1, s
assert (files[0].parent / "model_meta.json").exists()
PY

# 5. Bad input: one line, exit 2, nothing recorded lost.
before=$(rows "SELECT COUNT(*) FROM results")
mk() { rm -rf "$1"; mkdir -p "$1"; cp -r "$src/datasets/cmteb/LCQMC/mini/." "$1/"; chmod -R u+w "$1"; }
expect_error "missing task folder" "nope/task: task folder not found" "$EMBEVAL" run --task-dir nope/task
mk t1; rm t1/task.json
expect_error "missing task.json" "t1/task.json: missing task.json" "$EMBEVAL" run --task-dir t1
mk t2; sed -i 's/"STS"/"Summarization"/' t2/task.json
expect_error "unknown type" "t2/task.json: unknown task type \"Summarization\"; known types:" "$EMBEVAL" run --task-dir t2
mk t3; sed -i '5s/.*/{"sentence1": "a", "sentence2": /' t3/test.jsonl
expect_error "malformed line" "t3/test.jsonl:5: malformed JSON" "$EMBEVAL" run --task-dir t3
mk t4; sed -i '7s/"score": [0-9.]*/"score": "high"/' t4/test.jsonl
expect_error "wrong field type" "t4/test.jsonl:7: field \"score\" must be a number, got string" "$EMBEVAL" run --task-dir t4
mk t5; : >t5/test.jsonl
expect_error "empty split" "t5/test.jsonl: split is empty" "$EMBEVAL" run --task-dir t5
mk t6; sed -i 's/"cosine_spearman"/"cosine_spearmann"/' t6/task.json
expect_error "bad main score" "t6/task.json: main_score \"cosine_spearmann\" is not a metric of task type STS" "$EMBEVAL" run --task-dir t6
printf '{"text": "a", "embedding": [1, 2]}\n{"text": "b", "embedding": [1, 2, 3]}\n' >dims.jsonl
expect_error "dimension mismatch" "dims.jsonl:2: embedding has 3 dimensions; expected 2" "$EMBEVAL" run --model precomputed:dims.jsonl --task-dir t3
printf '{"text": "a", "embedding": [1, NaN]}\n' >nan.jsonl
expect_error "NaN vector" "nan.jsonl:1: malformed JSON" "$EMBEVAL" run --model precomputed:nan.jsonl --task-dir t3
printf '{"text": "a", "embedding": [1e39, 0]}\n' >inf.jsonl
expect_error "inf vector" "inf.jsonl:1: embedding[0] is not a finite float32" "$EMBEVAL" run --model precomputed:inf.jsonl --task-dir t3
printf '{"text": "only this", "embedding": [1, 0]}\n' >few.jsonl
expect_error "text missing from vectors" "few.jsonl: no embedding for text" "$EMBEVAL" run --model precomputed:few.jsonl --task-dir "$src/datasets/cmteb/LCQMC/mini"
expect_error "unknown model backend" "could not parse model spec \"bert-base\"" "$EMBEVAL" run --model bert-base --suite cmteb-mini
expect_error "unknown suite" "unknown suite \"cmteb-mni\"" "$EMBEVAL" run --suite cmteb-mni
echo "just text" >notdb.sqlite
expect_error "not a database" "notdb.sqlite: not an SQLite database" "$EMBEVAL" run --db notdb.sqlite --task-dir "$src/datasets/cmteb/LCQMC/mini"
[ "$(cat notdb.sqlite)" = "just text" ] && ok || bad "a non-database file was modified"
cp results.sqlite newer.sqlite
python3 -c "import sqlite3; c=sqlite3.connect('newer.sqlite'); c.execute('PRAGMA user_version = 42'); c.commit()"
expect_error "newer schema" "newer.sqlite: schema version 42 is newer than this embeval supports" "$EMBEVAL" report --db newer.sqlite
expect_error "missing database" "missing.sqlite: database not found" "$EMBEVAL" report --db missing.sqlite
expect_error "unknown report format" "unknown report format \"pdf\"; formats: md, html, csv, mteb" "$EMBEVAL" report --format pdf
"$EMBEVAL" run --task-dir t3 --db norun.sqlite >/dev/null 2>&1  # fails on line 5: a run, but no result
expect_error "report of a database without results" "norun.sqlite: 1 run(s) recorded but none finished a task (last run 1 failed: " "$EMBEVAL" report --db norun.sqlite --format html --out none.html
[ ! -e none.html ] && ok || bad "an empty report was written"
python3 -c "import sqlite3; c=sqlite3.connect('norun.sqlite'); c.execute('DELETE FROM runs'); c.commit()"
expect_error "report of a database without runs" "norun.sqlite: no runs recorded yet; run \`embeval run --suite cmteb-mini\` first" "$EMBEVAL" report --db norun.sqlite
expect_error "unknown option" "unrecognised option '--bogus'" "$EMBEVAL" run --bogus
[ "$(rows "SELECT COUNT(*) FROM results")" = "$before" ] && ok || bad "bad input changed the recorded results"

# 6. A failure mid-suite keeps the tasks finished before it.
mkdir -p suite_data/suites
mk suite_data/good; mk suite_data/broken; sed -i '3s/.*/not json/' suite_data/broken/test.jsonl
echo '{"name": "s", "tasks": ["good", "broken"]}' >suite_data/suites/s.json
expect_error "mid-suite failure" "broken/test.jsonl:3: malformed JSON" "$EMBEVAL" run --data-dir suite_data --suite s --db mid.sqlite
[ "$(rows "SELECT COUNT(*) FROM results" mid.sqlite)" = 1 ] && ok || bad "finished task lost after a later failure"
[ "$(rows "SELECT status FROM runs" mid.sqlite)" = failed ] && ok || bad "failed run not marked failed"

echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
