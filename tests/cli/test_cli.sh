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

# 1. The main job: default model on the mini suite.
if "$EMBEVAL" run --suite cmteb-mini --quiet >table.md 2>log.txt; then ok; else bad "run --suite cmteb-mini: $(cat log.txt)"; fi
n=$(rows "SELECT COUNT(*) FROM results")
[ "$n" = 14 ] && ok || bad "expected 14 results, got $n"
grep -q "| LCQMC-mini | STS | cosine_spearman |" table.md && ok || bad "run table lacks LCQMC-mini: $(cat table.md)"
[ "$(rows "SELECT status FROM runs ORDER BY id DESC LIMIT 1")" = finished ] && ok || bad "run not marked finished"

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
expect_error "unknown report format" "unknown report format \"pdf\"" "$EMBEVAL" report --format pdf
expect_error "unknown option" "unrecognised option '--bogus'" "$EMBEVAL" run --bogus
[ "$(rows "SELECT COUNT(*) FROM results")" = "$before" ] && ok || bad "bad input changed the recorded results"

# 6. A failure mid-suite keeps the tasks finished before it.
mkdir -p suite_data/suites
mk suite_data/good; mk suite_data/broken; sed -i '3s/.*/not json/' suite_data/broken/test.jsonl
echo '{"name": "s", "tasks": ["good", "broken"]}' >suite_data/suites/s.json
expect_error "mid-suite failure" "broken/test.jsonl:3: malformed JSON" "$EMBEVAL" run --data-dir suite_data --suite s --db mid.sqlite
[ "$(rows "SELECT COUNT(*) FROM results" mid.sqlite)" = 1 ] && ok || bad "finished task lost after a later failure"
[ "$(rows "SELECT status FROM runs" mid.sqlite)" = failed ] && ok || bad "failed run not marked failed"

# 7. The native encoder: embed, models inspect, run on a checkpoint folder.
ck="$src/tests/data/checkpoints/tiny-mean-dense-normalize"
python3 - "$ck" <<'PY' >strings.jsonl
import json, sys
n = 0
for line in open(sys.argv[1] + "/../texts.jsonl"):
    t = json.loads(line)["text"]
    if isinstance(t, str) and n < 50:
        print(json.dumps({"text": t}, ensure_ascii=False)); n += 1
PY
if "$EMBEVAL" embed --model "$ck" --input strings.jsonl --output v.npy --batch-size 7 --quiet 2>err.txt; then ok; else bad "embed: $(cat err.txt)"; fi
python3 - v.npy "$ck/../tiny-mean-dense-normalize.embeddings.jsonl" strings.jsonl <<'PY' && ok || bad "embed output differs from the reference embeddings"
import array, ast, json, math, sys
raw = open(sys.argv[1], "rb").read()
assert raw[:8] == b"\x93NUMPY\x01\x00", raw[:8]
hlen = raw[8] | raw[9] << 8
assert (10 + hlen) % 64 == 0
h = ast.literal_eval(raw[10:10 + hlen].decode())
assert h["descr"] == "<f4" and not h["fortran_order"] and h["shape"] == (50, 32), h
v = array.array("f", raw[10 + hlen:])
assert len(v) == 50 * 32
ref = {}
for line in open(sys.argv[2]):
    j = json.loads(line)
    if isinstance(j["text"], str): ref[j["text"]] = j["embedding"]
for i, line in enumerate(open(sys.argv[3])):
    r = ref[json.loads(line)["text"]]
    a = v[i * 32:(i + 1) * 32]
    cos = sum(x * y for x, y in zip(a, r)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in r))
    assert cos >= 0.99999, (i, cos)
PY
"$EMBEVAL" models inspect "$ck" >inspect.txt 2>err.txt || bad "models inspect: $(cat err.txt)"
grep -q "^pooling: *mean" inspect.txt && grep -q "^dense: *64 -> 32 (Identity)" inspect.txt && grep -q "^normalize: *true" inspect.txt \
  && grep -q "^max_length: *512" inspect.txt && ok || bad "models inspect content: $(cat inspect.txt)"
if "$EMBEVAL" run --model "$ck" --task-dir "$src/datasets/cmteb/LCQMC/mini" --device cpu --dtype fp32 --threads 1 \
  --query-prompt "q: " --db native.sqlite --quiet >native.md 2>err.txt; then ok; else bad "run --model DIR: $(cat err.txt)"; fi
grep -q "| LCQMC-mini | STS | cosine_spearman |" native.md && ok || bad "native run table: $(cat native.md)"
[ "$(rows "SELECT spec FROM models" native.sqlite)" = "hf:$ck,fp32" ] && ok || bad "native model spec: $(rows "SELECT spec FROM models" native.sqlite)"
expect_error "embed missing model" "could not parse model spec" "$EMBEVAL" embed --model nope/dir --input strings.jsonl --output x.npy
expect_error "fp16 on cpu" "--dtype fp16 is not supported on cpu" "$EMBEVAL" embed --model "$ck" --dtype fp16 --input strings.jsonl --output x.npy
expect_error "cuda without gpu or bad index" "cuda:9" "$EMBEVAL" embed --model "$ck,cuda:9" --input strings.jsonl --output x.npy
expect_error "bad spec token" "unknown token \"fp61\"" "$EMBEVAL" embed --model "$ck,fp61" --input strings.jsonl --output x.npy
printf '{"text": ["a", "b"]}\n' >listtext.jsonl
expect_error "non-string text" "listtext.jsonl:1: field \"text\" must be a string" "$EMBEVAL" embed --model "$ck" --input listtext.jsonl --output x.npy
expect_error "bad role" "--role must be query or passage" "$EMBEVAL" embed --model "$ck" --role doc --input strings.jsonl --output x.npy

echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
