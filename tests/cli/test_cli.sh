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

# 1. The main job, as the README's first command runs it: the default model
# (the bundled one, whatever the current folder) on the mini suite, then the
# Markdown and the HTML leaderboard, each report saying where it wrote its file.
help_here=$("$EMBEVAL" run --help); help_src=$(cd "$src" && "$EMBEVAL" run --help)
grep -qF -- "--model ] arg (=hf:$src/models/embeval-small-zh)" <<<"$help_here" && ok || bad "default model elsewhere: $(grep -- --model <<<"$help_here")"
grep -qF -- "--model ] arg (=hf:$src/models/embeval-small-zh)" <<<"$help_src" && ok || bad "default model in the checkout"
if "$EMBEVAL" run --suite cmteb-mini --quiet >table.md 2>log.txt; then ok; else bad "run --suite cmteb-mini: $(cat log.txt)"; fi
grep -q $'\r' log.txt && bad "progress line written to a file: $(cat -A log.txt | head -3)" || ok
n=$(rows "SELECT COUNT(*) FROM results")
[ "$n" = 14 ] && ok || bad "expected 14 results, got $n"
grep -q "| LCQMC-mini | STS | cosine_spearman |" table.md && ok || bad "run table lacks LCQMC-mini: $(cat table.md)"
[ "$(rows "SELECT status FROM runs ORDER BY id DESC LIMIT 1")" = finished ] && ok || bad "run not marked finished"
# Single-text latency was measured for every task (default 200 samples, fewer when a task has fewer texts).
[ "$(rows "SELECT COUNT(*) FROM timings WHERE latency_samples > 0 AND latency_p50_ms > 0 AND latency_p99_ms >= latency_p50_ms")" = 14 ] \
  && ok || bad "latency not recorded for every task"
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
grep -q "## Summary" lb.md && grep -qF "hf:$src/models/embeval-small-zh" lb.md && grep -q "LCQMC-mini" lb.md && ok || bad "markdown report content"
md_out=$("$EMBEVAL" report --format md 2>/dev/null)
grep -q "^| 1 | embeval-small-zh |" <<<"$md_out" && ok || bad "markdown to stdout: $(grep '^| 1 ' <<<"$md_out")"
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
assert set(j) == {"dataset_revision", "task_name", "mteb_version", "scores", "evaluation_time", "kg_co2_emissions", "embeval_dataset"}, j.keys()
d = j["embeval_dataset"]
assert d["name"] == "LCQMC-mini" and d["mteb_name"] == "LCQMC" and d["is_mteb_split"] is False and len(d["sha256"]) == 64, d
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
expect_error "unknown model backend" "could not parse model spec \"bert-base\": no folder \"bert-base\" exists" "$EMBEVAL" run --model bert-base --suite cmteb-mini
expect_error "unknown backend" "could not parse model spec \"hff:x\": unknown backend \"hff\"; did you mean hf?" "$EMBEVAL" models inspect hff:x
expect_error "inspect a missing folder" "no folder \"missing/model\" exists" "$EMBEVAL" models inspect missing/model,fp32
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

# 6. A task that fails does not sink the run: the others are evaluated and
# recorded, the failure too (with its error), the exit status is 2 with one
# line naming it; --fail-fast stops at it.
mkdir -p suite_data/suites
mk suite_data/good; mk suite_data/broken; mk suite_data/after; sed -i '3s/.*/not json/' suite_data/broken/test.jsonl
sed -i 's/"name": "[^"]*"/"name": "after"/' suite_data/after/task.json
echo '{"name": "s", "tasks": ["good", "broken", "after"]}' >suite_data/suites/s.json
expect_error "mid-suite failure" "1 task run(s) failed, the others are recorded" "$EMBEVAL" run --model baseline:char-ngram --data-dir suite_data --suite s --db mid.sqlite
grep -q "broken/test.jsonl:3: malformed JSON" err.txt && ok || bad "failure line lacks the task's error: $(cat err.txt)"
[ "$(rows "SELECT COUNT(*) FROM results" mid.sqlite)" = 2 ] && ok || bad "tasks around a failing one not recorded"
[ "$(rows "SELECT COUNT(*) FROM task_failures WHERE error LIKE '%broken/test.jsonl:3: malformed JSON%'" mid.sqlite)" = 1 ] && ok || bad "failure not recorded"
[ "$(rows "SELECT status FROM runs" mid.sqlite)" = failed ] && ok || bad "run with a failed task not marked failed"
"$EMBEVAL" run --model baseline:char-ngram --data-dir suite_data --suite s --db mid.sqlite >/dev/null 2>err.txt
[ "$(grep -c 'already recorded, skipped' err.txt)" = 2 ] && ok || bad "rerun redid finished tasks: $(cat err.txt)"
expect_error "--fail-fast" "broken/test.jsonl:3: malformed JSON" "$EMBEVAL" run --model baseline:char-ngram --fail-fast --data-dir suite_data --suite s --db fast.sqlite
[ "$(rows "SELECT COUNT(*) FROM results" fast.sqlite)" = 1 ] && ok || bad "--fail-fast went on after the failure"

# 6b. Picking tasks: --tasks, --task-types, --exclude, in `tasks` and `run` alike.
n=$("$EMBEVAL" tasks --suite cmteb-mini --task-types STS,PairClassification | grep -c '^| [A-Za-z]*-mini |')
[ "$n" = 5 ] && ok || bad "--task-types STS,PairClassification listed $n tasks"
out=$("$EMBEVAL" tasks --suite cmteb-mini --tasks LCQMC-mini,Ocnli-mini --exclude Ocnli-mini)
[ "$(grep -c -- '-mini |' <<<"$out")" = 1 ] && grep -q '^| LCQMC-mini |' <<<"$out" && ok || bad "--tasks / --exclude: $out"
out=$("$EMBEVAL" tasks --suite cmteb-mini --tasks TNews-mini,LCQMC-mini)  # the protocol column: Classification has one, STS none
grep -q '^| TNews-mini | Classification | .* | accuracy | sklearn-1.2 | /' <<<"$out" && grep -q '^| LCQMC-mini | STS | .* | cosine_spearman |  | /' <<<"$out" && ok || bad "tasks protocol column: $out"
expect_error "unknown task name" "--tasks LCQMC-mni: no such task among the 14 selected task(s); did you mean LCQMC-mini?" "$EMBEVAL" tasks --suite cmteb-mini --tasks LCQMC-mni
expect_error "unknown task type" "--task-types Sts: no such task type" "$EMBEVAL" run --suite cmteb-mini --task-types Sts --db sel.sqlite
expect_error "nothing left" "leave none of the 14 task(s)" "$EMBEVAL" run --suite cmteb-mini --tasks LCQMC-mini --exclude LCQMC-mini --db sel.sqlite
"$EMBEVAL" run --model baseline:char-ngram --suite cmteb-mini --task-types Clustering --db sel.sqlite --quiet >/dev/null 2>&1 || bad "run --task-types"
[ "$(rows "SELECT COUNT(*) FROM results" sel.sqlite)" = 3 ] && ok || bad "run --task-types Clustering did not run the 3 clustering tasks"

# 6c. Scoring protocols: --protocol re-evaluates the Classification and
# Clustering results of another protocol (saying why), not the others; with
# --cache nothing is encoded again; the protocol is recorded in its canonical
# name and reported; bad names are one-line errors that create nothing.
pick=(--model baseline:char-ngram --suite cmteb-mini --tasks CLSClusteringS2S-mini,ThuNewsClusteringS2S-mini,Waimai-mini,LCQMC-mini --cache pcache)
"$EMBEVAL" run "${pick[@]}" --db prot.sqlite >/dev/null 2>err.txt || bad "run for protocols: $(cat err.txt)"
[ "$(rows "SELECT COUNT(*) FROM results WHERE protocol = 'sklearn-1.2'" prot.sqlite)" = 3 ] && ok || bad "default protocol not recorded"
"$EMBEVAL" run "${pick[@]}" --db prot.sqlite --protocol sklearn-1.6 >/dev/null 2>err.txt || bad "run --protocol: $(cat err.txt)"
[ "$(grep -c 'recorded with scoring protocol sklearn-1.2, now sklearn-1.4, so evaluated again' err.txt)" = 3 ] \
  && grep -q 'LCQMC-mini (STS): already recorded, skipped' err.txt && ok || bad "--protocol reuse: $(cat err.txt)"
[ "$(rows "SELECT COUNT(*) FROM results r JOIN timings g ON g.result_id = r.id WHERE r.protocol = 'sklearn-1.4' AND g.encoded_items = 0" prot.sqlite)" = 3 ] \
  && ok || bad "--protocol with --cache encoded again"
# k-means' first center moved, so the clustering scores differ (the same embeddings).
[ "$(rows "SELECT COUNT(DISTINCT r.main_score) FROM results r JOIN tasks t ON t.id = r.task_id WHERE t.name = 'CLSClusteringS2S-mini'" prot.sqlite)" = 2 ] \
  && ok || bad "sklearn-1.4 clustering scored the same as 1.2"
"$EMBEVAL" report --db prot.sqlite --format md --out prot.md 2>/dev/null && grep -q "scoring protocol sklearn-1.4 (scikit-learn 1.4.x-1.6.x) for char-ngram" prot.md \
  && ok || bad "markdown lacks the protocol notice: $(grep -i protocol prot.md)"
"$EMBEVAL" report --db prot.sqlite --format csv --out prot.csv 2>/dev/null
python3 - prot.csv <<'PY' && ok || bad "CSV protocol / mteb_name columns"
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1], newline="")) if r["is_main"] == "1"]
by = {r["task"]: r for r in rows}
assert by["Waimai-mini"]["protocol"] == "sklearn-1.4" and by["LCQMC-mini"]["protocol"] == "", by
assert by["LCQMC-mini"]["mteb_name"] == "LCQMC", by["LCQMC-mini"]
PY
"$EMBEVAL" report --db prot.sqlite --format mteb --out prot_mteb 2>/dev/null
python3 - prot_mteb <<'PY' && ok || bad "MTEB export lacks embeval_scoring"
import json, pathlib, sys
j = json.load(open(next(pathlib.Path(sys.argv[1]).glob("*/*/Waimai-mini.json"))))
assert j["embeval_scoring"] == {"protocol": "sklearn-1.4", "reproduces": "MTEB 1.39.7 with scikit-learn 1.4.x-1.6.x"}, j.get("embeval_scoring")
j = json.load(open(next(pathlib.Path(sys.argv[1]).glob("*/*/LCQMC-mini.json"))))
assert "embeval_scoring" not in j
PY
expect_error "unknown protocol" "--protocol sklearn-1.9: not a scoring protocol; expected sklearn-1.2 (the default)" \
  "$EMBEVAL" run "${pick[@]}" --protocol sklearn-1.9 --db noprot.sqlite
[ ! -e noprot.sqlite ] && ok || bad "a bad --protocol created the database"
mk tp1; sed -i 's/"type": "STS"/"type": "STS", "protocol": "sklearn-1.4"/' tp1/task.json
expect_error "protocol on STS" "tp1/task.json: field \"protocol\" applies to Classification and Clustering tasks only, not STS" \
  "$EMBEVAL" run --model baseline:char-ngram --task-dir tp1 --db noprot.sqlite
rm -rf tp2; cp -r "$src/datasets/cmteb/Waimai/mini" tp2; chmod -R u+w tp2
sed -i 's/"type": "Classification"/"type": "Classification", "protocol": 1.4/' tp2/task.json
expect_error "protocol not a name" "tp2/task.json: field \"protocol\" = 1.4 is not a scoring protocol" \
  "$EMBEVAL" run --model baseline:char-ngram --task-dir tp2 --db noprot.sqlite
sed -i 's/"protocol": 1.4/"protocol": "sklearn-1.3"/' tp2/task.json
"$EMBEVAL" run --model baseline:char-ngram --task-dir tp2 --db tp2.sqlite --quiet >/dev/null 2>err.txt || bad "task.json protocol: $(cat err.txt)"
[ "$(rows "SELECT protocol FROM results" tp2.sqlite)" = sklearn-1.3 ] && ok || bad "task.json protocol not recorded"

# 7. embeval tokenize: Hugging Face's ids on the reference texts, then bad input.
tokdata="$src/tests/data/tokenizer"
for case in uncased cased; do
  lower=true; [ "$case" = cased ] && lower=false
  mkdir -p "bert-$case"
  cp "$tokdata/bert-base-chinese-vocab.txt" "bert-$case/vocab.txt"
  echo "{\"tokenizer_class\": \"BertTokenizer\", \"do_lower_case\": $lower, \"model_max_length\": 512}" >"bert-$case/tokenizer_config.json"
  # The reference holds {"text", "input_ids"}, the random strings as pairs
  # (["fuzz", s] with two id lists): flattened here into texts and expected ids.
  python3 - "$tokdata/bert-base-chinese-$case.jsonl" "texts-$case.jsonl" "expected-$case.jsonl" <<'PY'
import json, sys
src, texts, expected = sys.argv[1:]
with open(src, encoding="utf-8") as f, open(texts, "w", encoding="utf-8") as t, open(expected, "w") as e:
    for line in f:
        row = json.loads(line)
        pairs = [(row["text"], row["input_ids"])] if isinstance(row["text"], str) else zip(row["text"], row["input_ids"])
        for text, ids in pairs:
            t.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
            e.write(json.dumps(ids) + "\n")
PY
  if "$EMBEVAL" tokenize --model "bert-$case" --input "texts-$case.jsonl" --output "ids-$case.jsonl" 2>log.txt; then ok; else bad "tokenize $case: $(cat log.txt)"; fi
  python3 - "ids-$case.jsonl" "expected-$case.jsonl" 16 <<'PY' && ok || bad "tokenize $case: ids differ from Hugging Face's"
import json, sys
got = [json.loads(l)["input_ids"] for l in open(sys.argv[1])]
want = [json.loads(l) for l in open(sys.argv[2])]
same = sum(g == w for g, w in zip(got, want))
print(f"embeval tokenize ({sys.argv[1]}): {same} / {len(want)} identical to Hugging Face", file=sys.stderr)
assert len(got) == len(want) == 1480 and same == len(want)
PY
done
grep -q "tokenized 1480 texts" log.txt && grep -q "truncated at 512" log.txt && ok || bad "tokenize summary: $(cat log.txt)"
# --max-length 16: the first 15 ids of a longer text, then [SEP].
"$EMBEVAL" tokenize --model bert-uncased --input texts-uncased.jsonl --output ids16.jsonl --max-length 16 -q 2>log.txt || bad "tokenize --max-length: $(cat log.txt)"
python3 - ids16.jsonl expected-uncased.jsonl <<'PY' && ok || bad "tokenize --max-length 16 truncation"
import json, sys
got = [json.loads(l)["input_ids"] for l in open(sys.argv[1])]
want = [json.loads(l) for l in open(sys.argv[2])]
assert len(got) == len(want)
for g, w in zip(got, want):
    assert g == (w if len(w) <= 16 else w[:15] + [102]), (g, w)
PY
# The default length is sentence_bert_config.json's max_seq_length.
echo '{"max_seq_length": 32, "do_lower_case": false}' >bert-uncased/sentence_bert_config.json
"$EMBEVAL" tokenize --model bert-uncased --input texts-uncased.jsonl --output ids32.jsonl -q 2>log.txt || bad "tokenize default length: $(cat log.txt)"
python3 -c "import json,sys; assert max(len(json.loads(l)['input_ids']) for l in open('ids32.jsonl')) == 32" && ok || bad "max_seq_length not applied"
printf '{"text": "a"}\n{"txt": "b"}\n' >missing-field.jsonl
expect_error "tokenize: missing text" "missing-field.jsonl:2: missing field \"text\"" "$EMBEVAL" tokenize --model bert-uncased --input missing-field.jsonl --output bad-ids.jsonl
[ ! -e bad-ids.jsonl ] && [ ! -e bad-ids.jsonl.part ] && ok || bad "a failed tokenize left an output file"
printf '{"text": "a"}\n{"text": 3}\n' >number.jsonl
expect_error "tokenize: text not a string" "number.jsonl:2: field \"text\" must be a string, got integer" "$EMBEVAL" tokenize --model bert-uncased --input number.jsonl --output bad-ids.jsonl
printf '{"text": "a"}\n{"text": "b"\n' >broken.jsonl
expect_error "tokenize: malformed line" "broken.jsonl:2: malformed JSON" "$EMBEVAL" tokenize --model bert-uncased --input broken.jsonl --output bad-ids.jsonl
expect_error "tokenize: missing input" "nope.jsonl: file not found" "$EMBEVAL" tokenize --model bert-uncased --input nope.jsonl --output bad-ids.jsonl
expect_error "tokenize: no model option" "the option '--model' is required" "$EMBEVAL" tokenize --input texts-uncased.jsonl --output bad-ids.jsonl
expect_error "tokenize: missing model" "no-model: model folder not found" "$EMBEVAL" tokenize --model no-model --input texts-uncased.jsonl --output bad-ids.jsonl
mkdir -p empty-model
expect_error "tokenize: no tokenizer" "empty-model: no tokenizer found" "$EMBEVAL" tokenize --model empty-model --input texts-uncased.jsonl --output bad-ids.jsonl
mkdir -p no-cls; printf '[PAD]\n[UNK]\n[SEP]\n' >no-cls/vocab.txt
expect_error "tokenize: vocab without [CLS]" "no-cls/vocab.txt: no \"[CLS]\" token" "$EMBEVAL" tokenize --model no-cls --input texts-uncased.jsonl --output bad-ids.jsonl
mkdir -p bad-json; echo '{"model": ' >bad-json/tokenizer.json
expect_error "tokenize: unreadable tokenizer.json" "bad-json/tokenizer.json: malformed JSON" "$EMBEVAL" tokenize --model bad-json --input texts-uncased.jsonl --output bad-ids.jsonl
mkdir -p gpt2; cp no-cls/vocab.txt gpt2/; echo '{"tokenizer_class": "GPT2Tokenizer"}' >gpt2/tokenizer_config.json
expect_error "tokenize: unknown tokenizer type" "unknown tokenizer type \"GPT2Tokenizer\"" "$EMBEVAL" tokenize --model gpt2 --input texts-uncased.jsonl --output bad-ids.jsonl
expect_error "tokenize: bad flavor" "--flavor must be auto, slow or fast, not \"medium\"" "$EMBEVAL" tokenize --model bert-uncased --input texts-uncased.jsonl --output bad-ids.jsonl --flavor medium
# BertTokenizerFast's rules keep an unassigned code point (the word is [UNK]); BertTokenizer's drop it.
printf '{"text": "ab\\u0378c"}\n' >unassigned.jsonl
"$EMBEVAL" tokenize --model bert-cased --input unassigned.jsonl --output slow.jsonl -q && "$EMBEVAL" tokenize --model bert-cased --input unassigned.jsonl --output fast.jsonl --flavor fast -q || bad "tokenize --flavor"
[ "$(cat slow.jsonl)" = '{"input_ids": [101, 8425, 102]}' ] && [ "$(cat fast.jsonl)" = '{"input_ids": [101, 100, 102]}' ] && ok || bad "tokenize --flavor: $(cat slow.jsonl) $(cat fast.jsonl)"
expect_error "tokenize: max length 1" "--max-length must be 0 (the model's) or at least 2" "$EMBEVAL" tokenize --model bert-uncased --input texts-uncased.jsonl --output bad-ids.jsonl --max-length 1
mkdir -p no-length; cp bert-uncased/vocab.txt no-length/
expect_error "tokenize: unknown max length" "cannot tell the maximum sequence length" "$EMBEVAL" tokenize --model no-length --input texts-uncased.jsonl --output bad-ids.jsonl
[ ! -e bad-ids.jsonl ] && ok || bad "a failed tokenize wrote bad-ids.jsonl"
# 8. The native encoder: embed, models inspect, run on a checkpoint folder.
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
expect_error "bad role" "--role must be query, passage or none" "$EMBEVAL" embed --model "$ck" --role doc --input strings.jsonl --output x.npy

# Quantized variants side by side: one command, fp32 first as the reference,
# each variant recorded under its own spec with its fidelity to fp32.
if "$EMBEVAL" run --model "$ck" --quant w8a8,fp32,wo-int4-g32,wo-int8,bf16+wo-int8 --task-dir "$src/datasets/cmteb/LCQMC/mini" \
  --threads 1 --latency-samples 5 --db quant.sqlite --quiet >quant.md 2>err.txt; then ok; else bad "run --quant: $(cat err.txt)"; fi
[ "$(rows "SELECT group_concat(spec, ' ') FROM (SELECT spec FROM models ORDER BY id)" quant.sqlite)" = \
  "hf:$ck,fp32 hf:$ck,fp32,w8a8 hf:$ck,fp32,wo-int4-g32 hf:$ck,fp32,wo-int8 hf:$ck,bf16,wo-int8" ] && ok \
  || bad "quant specs (fp32 first): $(rows "SELECT group_concat(spec, ' ') FROM models" quant.sqlite)"
[ "$(rows "SELECT count(*) FROM scores WHERE metric = 'embeval_cosine_to_fp32' AND value > 0.99 AND value <= 1.0000001" quant.sqlite)" = 4 ] \
  && ok || bad "fidelity rows: $(rows "SELECT group_concat(value) FROM scores WHERE metric LIKE 'embeval%'" quant.sqlite)"
[ "$(rows "SELECT count(*) FROM models WHERE quantization = 'wo-int4-g32'" quant.sqlite)" = 1 ] && ok || bad "models.quantization not recorded"
# Each variant's single-text time was measured in turn with fp32's (kept loaded), whose p50 is recorded beside it.
[ "$(rows "SELECT count(*) FROM timings WHERE latency_reference_p50_ms > 0" quant.sqlite)" = 4 ] \
  && [ "$(rows "SELECT count(*) FROM timings g JOIN results r ON r.id = g.result_id JOIN models m ON m.id = r.model_id
              WHERE m.quantization = '' AND m.dtype IN ('', 'fp32') AND g.latency_reference_p50_ms IS NULL" quant.sqlite)" = 1 ] \
  && ok || bad "paired latency rows: $(rows "SELECT group_concat(latency_reference_p50_ms) FROM timings" quant.sqlite)"
"$EMBEVAL" report --db quant.sqlite --format md --out quant-report.md >/dev/null 2>err.txt || bad "report of quantized runs: $(cat err.txt)"
grep -q '^| `wo-int4-g32` | cpu |' quant-report.md && ok || bad "quantization view lacks wo-int4-g32: $(grep -A8 '## Quantization' quant-report.md)"
grep -q '^| `bf16+wo-int8` | cpu |' quant-report.md && ok || bad "quantization view lacks bf16+wo-int8: $(grep -A9 '## Quantization' quant-report.md)"
grep -q '| Speed-up | Batch-1 time | Memory |' quant-report.md && ok || bad "quantization view lacks the batch-1 time: $(grep -A9 '## Quantization' quant-report.md)"
expect_error "quant dtype clash" "--quant lists bf16+wo-int8 but --dtype says fp32" "$EMBEVAL" run --model "$ck" --dtype fp32 --quant fp32,bf16+wo-int8 --task-dir "$src/datasets/cmteb/LCQMC/mini" --db q4.sqlite
if "$EMBEVAL" embed --model "$ck" --quant wo-int8 --fake-quant --input strings.jsonl --output vq.npy --quiet 2>err.txt; then ok; else bad "embed --quant --fake-quant: $(cat err.txt)"; fi
expect_error "quant list in embed" "--quant takes one method here" "$EMBEVAL" embed --model "$ck" --quant fp32,wo-int8 --input strings.jsonl --output x.npy
expect_error "unknown quant method" "did you mean wo-int8?" "$EMBEVAL" run --model "$ck" --quant wo-imt8 --task-dir "$src/datasets/cmteb/LCQMC/mini" --db q2.sqlite
expect_error "quant on a baseline" "--quant applies to checkpoint folders" "$EMBEVAL" run --model baseline:char-ngram --quant wo-int8 --task-dir "$src/datasets/cmteb/LCQMC/mini" --db q3.sqlite
expect_error "fake-quant alone" "--fake-quant needs --quant" "$EMBEVAL" embed --model "$ck" --fake-quant --input strings.jsonl --output x.npy
# SmoothQuant calibrates on texts drawn from the run's tasks (or --calib FILE).
if "$EMBEVAL" run --model "$ck" --quant fp32,sq-w8a8-a0.5 --calib-samples 64 --task-dir "$src/datasets/cmteb/LCQMC/mini" \
  --threads 1 --latency-samples 0 --db sq.sqlite --quiet >sq.md 2>err.txt; then ok; else bad "run --quant sq: $(cat err.txt)"; fi
[ "$(rows "SELECT quantization FROM models WHERE spec LIKE '%sq-w8a8-a0.5'" sq.sqlite)" = \
  "sq-w8a8-a0.5; calibration: 64 texts drawn from 1 task folder(s), seed 0" ] && ok \
  || bad "sq calibration record: $(rows "SELECT quantization FROM models" sq.sqlite)"
[ "$(rows "SELECT count(*) FROM scores WHERE metric = 'embeval_cosine_to_fp32' AND value > 0.99" sq.sqlite)" = 1 ] && ok || bad "sq fidelity"
if "$EMBEVAL" embed --model "$ck" --quant sq-w8a8-a0.5 --calib strings.jsonl --input strings.jsonl --output vsq.npy --quiet 2>err.txt; then ok; else bad "embed --calib: $(cat err.txt)"; fi
# Without --calib, embed calibrates on the texts it encodes: SmoothQuant's
# statistic is a per-channel maximum, so the shuffled distinct texts give
# the same vectors as the file in order.
if "$EMBEVAL" embed --model "$ck" --quant sq-w8a8-a0.5 --input strings.jsonl --output vsq-input.npy 2>err.txt; then ok; else bad "embed sq on its input: $(cat err.txt)"; fi
grep -q "calibrated on $(python3 -c 'import json,sys; print(len({json.loads(l)["text"] for l in open("strings.jsonl")}))') texts drawn from the input strings.jsonl, seed 0" err.txt \
  && ok || bad "embed's calibration source: $(cat err.txt)"
cmp -s vsq.npy vsq-input.npy && ok || bad "embed sq: input-calibrated vectors differ from --calib on the same texts"
head -n 5 strings.jsonl >five.jsonl
expect_error "too few input texts" "gptq-int4-g32: 5 calibration texts (the distinct texts of five.jsonl; or give --calib FILE)" \
  "$EMBEVAL" embed --model "$ck" --quant gptq-int4-g32 --input five.jsonl --output x.npy
expect_error "awq named by the spec, no texts" "awq-int4-g32: calibrated methods need texts: give --calib FILE" \
  "$EMBEVAL" models inspect "$ck,awq-int4-g32"
if "$EMBEVAL" embed --model "hf:$ck,awq-int4-g32" --calib strings.jsonl --input strings.jsonl --output va-spec.npy --quiet 2>err.txt; then ok; else bad "embed, awq in the spec: $(cat err.txt)"; fi
# A recorded spec runs again: the method in the spec string is calibrated
# like --quant's, and gives the same model (fingerprint) and scores.
sq_spec=$(rows "SELECT spec FROM models WHERE spec LIKE '%sq-w8a8-a0.5'" sq.sqlite)
if "$EMBEVAL" run --model "$sq_spec" --calib-samples 64 --task-dir "$src/datasets/cmteb/LCQMC/mini" \
  --threads 1 --latency-samples 0 --db sq-spec.sqlite --quiet >/dev/null 2>err.txt; then ok; else bad "run the recorded spec $sq_spec: $(cat err.txt)"; fi
for q in "SELECT spec || ' ' || fingerprint || ' ' || quantization FROM models WHERE quantization LIKE 'sq-%'" \
  "SELECT group_concat(value) FROM scores s JOIN results r ON r.id = s.result_id JOIN models m ON m.id = r.model_id WHERE m.quantization LIKE 'sq-%' AND s.metric = 'cosine_spearman'"; do
  [ -n "$(rows "$q" sq.sqlite)" ] && [ "$(rows "$q" sq-spec.sqlite)" = "$(rows "$q" sq.sqlite)" ] && ok \
    || bad "recorded spec rerun: '$(rows "$q" sq-spec.sqlite)' against '$(rows "$q" sq.sqlite)'"
done
expect_error "spec and --quant disagree" "quantization awq-int4-g32 contradicts quantization wo-int8" \
  "$EMBEVAL" run --model "$ck,awq-int4-g32" --quant wo-int8 --task-dir "$src/datasets/cmteb/LCQMC/mini" --db contra.sqlite
[ ! -e contra.sqlite ] && ok || bad "a contradicting spec created its database"
if "$EMBEVAL" embed --model "$ck" --quant awq-int4-g32 --calib strings.jsonl --input strings.jsonl --output va.npy --quiet 2>err.txt; then ok; else bad "embed awq: $(cat err.txt)"; fi
if "$EMBEVAL" embed --model "$ck" --quant gptq-int4-g32-actorder --calib strings.jsonl --input strings.jsonl --output vg.npy --quiet 2>err.txt; then ok; else bad "embed gptq: $(cat err.txt)"; fi

# embeval quantize: a saved quantized checkpoint that `run` loads like any other.
if "$EMBEVAL" quantize --model "$ck" --method gptq-int4-g32 --calib-task-dir "$src/datasets/cmteb/LCQMC/mini" --calib-samples 32 \
  --out ck-gptq >q.txt 2>err.txt; then ok; else bad "quantize: $(cat err.txt)"; fi
grep -q 'reloaded from disk: min cosine 1.0000000' q.txt && ok || bad "quantize self-check: $(cat q.txt)"
[ -f ck-gptq/quantize_config.json ] && [ -f ck-gptq/2_Dense/model.safetensors ] && ok || bad "quantized folder: $(ls -R ck-gptq)"
if "$EMBEVAL" run --model ck-gptq --task-dir "$src/datasets/cmteb/LCQMC/mini" --threads 1 --latency-samples 0 --db qc.sqlite \
  --quiet >/dev/null 2>err.txt; then ok; else bad "run on a quantized checkpoint: $(cat err.txt)"; fi
[ "$(rows "SELECT quantization FROM models" qc.sqlite)" = "gptq-int4-g32 (quantized checkpoint)" ] && ok \
  || bad "quantized checkpoint record: $(rows "SELECT quantization FROM models" qc.sqlite)"
expect_error "quantize onto an existing folder" "already exists" "$EMBEVAL" quantize --model "$ck" --method wo-int8 --out ck-gptq
expect_error "quantize a quantized folder" "already quantized" "$EMBEVAL" quantize --model ck-gptq --method wo-int8 --out ck-2
# In a --quant list too, before the first variant records anything.
expect_error "run a quantized folder with --quant" "ck-gptq: the checkpoint is already quantized (config.json); drop --quant wo-int8" \
  "$EMBEVAL" run --model ck-gptq --quant fp32,wo-int8 --task-dir "$src/datasets/cmteb/LCQMC/mini" --db requant.sqlite
[ ! -e requant.sqlite ] && ok || bad "a refused --quant list created its database"
expect_error "quantize: unknown method" "did you mean gptq-int4-g128?" "$EMBEVAL" quantize --model "$ck" --method gptq-int4-g12 --out ck-3
expect_error "quantize: bad width" "takes int4 weights, not \"int3\"" "$EMBEVAL" quantize --model "$ck" --method awq-int3 --out ck-3
expect_error "quantize: no texts" "give --calib FILE" "$EMBEVAL" quantize --model "$ck" --method awq-int4-g32 --out ck-4
[ ! -e ck-2 ] && [ ! -e ck-4 ] && ok || bad "a failed quantize left a folder"

# embeval train: a few steps of a tiny model; the folder it writes loads like any checkpoint.
python3 - <<'PY' >pairs.jsonl
import json
topics = ["苹果", "银行", "足球", "医生", "火车", "电脑", "天气", "音乐"]
for i, t in enumerate(topics):
    for f in ["{}怎么样", "关于{}的问题", "请介绍一下{}"]:
        other = topics[(i + 1) % len(topics)]
        print(json.dumps({"query": f.format(t), "positive": "我想了解" + t, "negatives": [f.format(other)],
                          "kind": "qa" if i % 2 else "paraphrase"}, ensure_ascii=False))
PY
vocab="$src/tests/data/tokenizer/bert-base-chinese-vocab.txt"
if "$EMBEVAL" train --data pairs.jsonl --vocab "$vocab" --out tiny-trained --steps 4 --batch-size 8 --layers 1 --hidden 32 \
  --heads 2 --ffn 64 --max-length 16 --mine-every 2 --mlm-steps 2 --threads 1 --quiet 2>err.txt; then ok; else bad "train: $(cat err.txt)"; fi
[ -f tiny-trained/model.safetensors ] && [ -f tiny-trained/train_log.jsonl ] && [ -f tiny-trained/README.md ] && ok \
  || bad "trained folder: $(ls tiny-trained 2>&1)"
if "$EMBEVAL" embed --model tiny-trained --input strings.jsonl --output vt.npy --quiet 2>err.txt; then ok; else bad "embed a trained model: $(cat err.txt)"; fi
printf '%s\n' '{"query": "a", "positive": "b", "kind": "paraphrase"}' '{"query": "a", "positive": "b", "kind": "chat"}' >badpairs.jsonl
expect_error "train: unknown kind" "badpairs.jsonl:2: kind \"chat\"" "$EMBEVAL" train --data badpairs.jsonl --vocab "$vocab" --out x-trained
expect_error "train: onto an existing folder" "already exists" "$EMBEVAL" train --data pairs.jsonl --vocab "$vocab" --out tiny-trained
# The two-way loss and passage windows: the model reads --passage-positions tokens.
if "$EMBEVAL" train --data pairs.jsonl --vocab "$vocab" --out tiny-win --steps 3 --batch-size 8 --layers 1 --hidden 32 \
  --heads 2 --ffn 64 --max-length 16 --passage-max-length 12 --passage-positions 40 --symmetric --threads 1 --quiet 2>err.txt
then ok; else bad "train with windows: $(cat err.txt)"; fi
grep -q '"max_seq_length": 40' tiny-win/sentence_bert_config.json && grep -q "both directions\|two directions" tiny-win/README.md && ok \
  || bad "windowed model: $(cat tiny-win/sentence_bert_config.json)"
expect_error "train: windows no longer than the passages" "passage positions must be 0 or more than the passage length (16)" \
  "$EMBEVAL" train --data pairs.jsonl --vocab "$vocab" --out x-trained --passage-positions 16 --max-length 16
[ ! -e x-trained ] && [ ! -e x-trained.partial ] && ok || bad "a failed train left a folder"
# Inverse-cloze pairs need passages of two sentences or more; these positives are one sentence each.
expect_error "train: ict without passages to cut" "ict has a share but the data has no qa or title-content passage" \
  "$EMBEVAL" train --data pairs.jsonl --vocab "$vocab" --out x-trained --proportions paraphrase=0.5,qa=0.3,ict=0.2
[ ! -e x-trained ] && [ ! -e x-trained.partial ] && ok || bad "a failed ict train left a folder"

echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
