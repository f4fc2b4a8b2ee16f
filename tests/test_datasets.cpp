// Task-folder readers: the bundled data loads with the sizes task.json
// declares, and every kind of bad input gives a one-line error naming the
// file (and line) — never a crash or a silent skip.
#include <string>

#include <gtest/gtest.h>

#include "datasets/calibration_texts.h"
#include "datasets/data_error.h"
#include "datasets/suite.h"
#include "datasets/task_data.h"
#include "datasets/task_spec.h"
#include "datasets/text_util.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace embeval;
using namespace embeval::data;

namespace {

// Runs f, expects a DataError whose message contains every fragment and has no newline.
template <class F>
void expect_data_error(F f, std::initializer_list<std::string> fragments) {
  try {
    f();
    ADD_FAILURE() << "expected a DataError";
  } catch (const DataError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const auto& frag : fragments) EXPECT_NE(msg.find(frag), std::string::npos) << "'" << frag << "' not in: " << msg;
  }
}

fs::path make_task(const std::string& name, const std::string& task_json) {
  fs::path dir = test::scratch_dir("datasets/" + name);
  test::write_file(dir / "task.json", task_json);
  return dir;
}

const char* STS_JSON = R"({"name": "T", "type": "STS", "language": "zh", "main_score": "cosine_spearman"})";

}  // namespace

TEST(TextUtil, PythonStripMatchesStrStrip) {
  // Python: "\u3000 a b\xa0\n".strip() == "a b"; U+200B is not whitespace for str.isspace().
  EXPECT_EQ(python_strip("\xe3\x80\x80 a b\xc2\xa0\n"), "a b");
  EXPECT_EQ(python_strip("\xe2\x80\x8b" "x"), "\xe2\x80\x8b" "x");
  EXPECT_EQ(python_strip("\x1c\x1d\x1e\x1f"), "");
  EXPECT_EQ(python_strip(""), "");
  EXPECT_EQ(python_strip("  中文  "), "中文");
}

TEST(TextUtil, Utf8PreviewCutsOnCodePoints) {
  EXPECT_EQ(utf8_preview("中文字", 4), "中...");  // 3-byte characters: only one fits in 4 bytes
  EXPECT_EQ(utf8_preview("abc", 10), "abc");
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));  // overlong '/'
  EXPECT_TRUE(is_valid_utf8("中文"));
}

// Every bundled task (full and mini) loads, and its size equals task.json's "splits".
TEST(BundledData, EveryTaskLoadsWithDeclaredSizes) {
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(test::source_dir() / "datasets" / "cmteb")) {
    if (!entry.is_directory()) continue;
    for (const fs::path& dir : {entry.path(), entry.path() / "mini"}) {
      TaskSpec spec = read_task_spec(dir);
      const auto& splits = spec.raw["splits"];
      SCOPED_TRACE(spec.name);
      if (spec.type == "STS") {
        EXPECT_EQ(load_sts(spec).score.size(), splits["test"].get<size_t>());
      } else if (spec.type == "PairClassification") {
        EXPECT_EQ(load_pairs(spec).label.size(), splits["test"].get<size_t>());
      } else if (spec.type == "Classification") {
        auto d = load_classification(spec);
        EXPECT_EQ(d.train_text.size(), splits["train"].get<size_t>());
        EXPECT_EQ(d.test_text.size(), splits["test"].get<size_t>());
        EXPECT_LE(d.classes.size(), spec.label_names.size());
      } else if (spec.type == "Clustering") {
        auto sets = load_clustering(spec);
        size_t n = 0;
        for (const auto& s : sets) n += s.sentences.size();
        EXPECT_EQ(sets.size(), splits["test"]["sets"].get<size_t>());
        EXPECT_EQ(n, splits["test"]["sentences"].get<size_t>());
      } else if (spec.type == "Reranking") {
        EXPECT_EQ(load_reranking(spec).size(), splits["test"].get<size_t>());
      } else if (spec.type == "Retrieval") {
        auto d = load_retrieval(spec);
        EXPECT_EQ(d.query_ids.size(), splits["test"]["queries"].get<size_t>());
        EXPECT_EQ(d.corpus_ids.size(), splits["test"]["corpus"].get<size_t>());
        size_t judgements = 0;
        for (const auto& [q, rel] : d.qrels) judgements += rel.size();
        EXPECT_EQ(judgements, splits["test"]["qrels"].get<size_t>());
      } else {
        ADD_FAILURE() << "unexpected type " << spec.type;
      }
      EXPECT_EQ(dataset_checksum(spec).size(), 64u);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 28);
}

TEST(BundledData, SuitesNameExistingTasks) {
  fs::path root = test::source_dir() / "datasets";
  EXPECT_EQ(list_suites(root), (std::vector<std::string>{"cmteb-local", "cmteb-mini"}));
  for (const auto& name : list_suites(root)) {
    Suite s = find_suite(name, root);
    EXPECT_EQ(s.task_dirs.size(), 14u);
    for (const auto& d : s.task_dirs) EXPECT_TRUE(fs::is_regular_file(d / "task.json")) << d;
  }
  expect_data_error([&] { find_suite("cmteb-mni", root); }, {"unknown suite \"cmteb-mni\"", "cmteb-mini"});
}

TEST(TaskSpecErrors, MissingFolderAndFile) {
  expect_data_error([] { read_task_spec("/nonexistent/task"); }, {"/nonexistent/task", "task folder not found"});
  fs::path dir = test::scratch_dir("datasets/no_task_json");
  expect_data_error([&] { read_task_spec(dir); }, {"task.json", "missing task.json"});
}

TEST(TaskSpecErrors, MalformedAndMissingFields) {
  expect_data_error([] { read_task_spec(make_task("bad_json", "{\"name\": ")); }, {"task.json", "malformed JSON"});
  expect_data_error([] { read_task_spec(make_task("no_type", R"({"name": "T", "language": "zh", "main_score": "x"})")); },
                    {"task.json", "missing field \"type\""});
  expect_data_error([] {
    read_task_spec(make_task("bad_n", R"({"name": "T", "type": "STS", "language": "zh", "main_score": "x", "n_experiments": "10"})"));
  }, {"task.json", "\"n_experiments\" must be an integer, got string"});
  TaskSpec s = read_task_spec(make_task("defaults", STS_JSON));
  EXPECT_EQ(s.eval_split, "test");
  EXPECT_EQ(s.samples_per_label, 8);
  EXPECT_EQ(s.n_experiments, 10);
  EXPECT_EQ(s.batch_size, 500);
  EXPECT_FALSE(s.ignore_identical_ids);
}

TEST(JsonlErrors, MalformedLineNamesFileAndLine) {
  fs::path dir = make_task("malformed", STS_JSON);
  test::write_file(dir / "test.jsonl",
                   "{\"sentence1\": \"a\", \"sentence2\": \"b\", \"score\": 1}\n\n{\"sentence1\": \"a\",\n");
  expect_data_error([&] { load_sts(read_task_spec(dir)); }, {"test.jsonl:3:", "malformed JSON"});
}

// A number beyond a double is nlohmann's out_of_range, not a parse_error: it
// used to escape the reader (found by tests/fuzz/fuzz_jsonl).
TEST(JsonlErrors, NumberTooLargeForADouble) {
  fs::path dir = make_task("overflow", STS_JSON);
  test::write_file(dir / "test.jsonl", "{\"sentence1\": \"a\", \"sentence2\": \"b\", \"score\": 1e99999}\n");
  expect_data_error([&] { load_sts(read_task_spec(dir)); },
                    {"test.jsonl:1: malformed JSON: number overflow parsing '1e99999'"});
  expect_data_error([] { read_task_spec(make_task("overflow_spec", R"({"name": "T", "n_experiments": 1e400})")); },
                    {"task.json: malformed JSON: number overflow parsing '1e400'"});
}

TEST(JsonlErrors, WrongFieldTypeAndMissingField) {
  fs::path dir = make_task("wrong_type", STS_JSON);
  test::write_file(dir / "test.jsonl",
                   "{\"sentence1\": \"a\", \"sentence2\": \"b\", \"score\": 1}\n"
                   "{\"sentence1\": \"a\", \"sentence2\": \"b\", \"score\": \"high\"}\n");
  expect_data_error([&] { load_sts(read_task_spec(dir)); }, {"test.jsonl:2:", "\"score\" must be a number, got string"});
  test::write_file(dir / "test.jsonl", "{\"sentence1\": \"a\", \"score\": 1}\n");
  expect_data_error([&] { load_sts(read_task_spec(dir)); }, {"test.jsonl:1:", "missing field \"sentence2\""});
  test::write_file(dir / "test.jsonl", "[1, 2]\n");
  expect_data_error([&] { load_sts(read_task_spec(dir)); }, {"test.jsonl:1:", "expected a JSON object, got array"});
  test::write_file(dir / "test.jsonl", "{\"sentence1\": \"\xff\", \"sentence2\": \"b\", \"score\": 1}\n");
  expect_data_error([&] { load_sts(read_task_spec(dir)); }, {"test.jsonl:1:", "invalid UTF-8"});
}

TEST(JsonlErrors, EmptySplitAndMissingFile) {
  fs::path dir = make_task("empty", STS_JSON);
  expect_data_error([&] { load_sts(read_task_spec(dir)); }, {"test.jsonl", "file not found"});
  test::write_file(dir / "test.jsonl", "\n  \n");
  expect_data_error([&] { load_sts(read_task_spec(dir)); }, {"test.jsonl", "split is empty"});
}

TEST(JsonlErrors, PairLabelsMustBeBinary) {
  fs::path dir = make_task("pair", R"({"name": "P", "type": "PairClassification", "language": "zh", "main_score": "max_ap"})");
  test::write_file(dir / "test.jsonl", "{\"sentence1\": \"a\", \"sentence2\": \"b\", \"label\": 2}\n");
  expect_data_error([&] { load_pairs(read_task_spec(dir)); }, {"test.jsonl:1:", "expected 0 or 1"});
}

TEST(ClassificationLoader, ClassesInNumpyUniqueOrder) {
  fs::path dir = make_task("cls", R"({"name": "C", "type": "Classification", "language": "zh", "main_score": "accuracy"})");
  test::write_file(dir / "train.jsonl", "{\"text\": \"a\", \"label\": 10}\n{\"text\": \"b\", \"label\": 2}\n{\"text\": \"c\", \"label\": 10}\n");
  test::write_file(dir / "test.jsonl", "{\"text\": \"d\", \"label\": 2}\n");
  ClassificationData d = load_classification(read_task_spec(dir));
  EXPECT_EQ(d.classes, (std::vector<std::string>{"2", "10"}));  // numeric order, as np.unique on ints
  EXPECT_EQ(d.train_label, (std::vector<int>{1, 0, 1}));
  EXPECT_EQ(d.test_label, (std::vector<int>{0}));
  // A test label unseen in training still becomes a class (sklearn's metrics count it).
  test::write_file(dir / "test.jsonl", "{\"text\": \"d\", \"label\": 7}\n");
  d = load_classification(read_task_spec(dir));
  EXPECT_EQ(d.classes, (std::vector<std::string>{"2", "7", "10"}));
  EXPECT_EQ(d.test_label, (std::vector<int>{1}));
  EXPECT_EQ(d.train_label, (std::vector<int>{2, 0, 2}));
  test::write_file(dir / "train.jsonl", "{\"text\": \"a\", \"label\": 10}\n");
  expect_data_error([&] { load_classification(read_task_spec(dir)); }, {"train.jsonl", "only one class (10)"});
}

TEST(RetrievalLoader, QrelsNamingUnknownIds) {
  fs::path dir = make_task("ret", R"({"name": "R", "type": "Retrieval", "language": "zh", "main_score": "ndcg_at_10"})");
  test::write_file(dir / "corpus.jsonl", "{\"_id\": \"d1\", \"title\": \" T \", \"text\": \"body \"}\n{\"_id\": \"d2\", \"text\": \"x\"}\n");
  test::write_file(dir / "queries.jsonl", "{\"_id\": \"q1\", \"text\": \"q\"}\n{\"_id\": \"q2\", \"text\": \"unjudged\"}\n");
  test::write_file(dir / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\n");
  RetrievalData d = load_retrieval(read_task_spec(dir));
  EXPECT_EQ(d.corpus_texts[0], "T  body");  // (title + " " + text).strip(), as MTEB builds it
  EXPECT_EQ(d.query_ids, (std::vector<std::string>{"q1"}));  // only judged queries
  EXPECT_EQ(d.qrels.at("q1").at("d1"), 2);
  EXPECT_EQ(d.qrels.at("q1").at("d2"), 0);

  test::write_file(dir / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td9\t1\n");
  expect_data_error([&] { load_retrieval(read_task_spec(dir)); }, {"test.tsv:2:", "unknown corpus-id \"d9\""});
  test::write_file(dir / "qrels" / "test.tsv", "q7\td1\t1\n");
  expect_data_error([&] { load_retrieval(read_task_spec(dir)); }, {"test.tsv:1:", "unknown query-id \"q7\""});
  test::write_file(dir / "qrels" / "test.tsv", "q1\td1\tone\n");
  expect_data_error([&] { load_retrieval(read_task_spec(dir)); }, {"test.tsv:1:", "score \"one\" is not an integer"});
  test::write_file(dir / "corpus.jsonl", "{\"_id\": \"d1\", \"text\": \"a\"}\n{\"_id\": \"d1\", \"text\": \"b\"}\n");
  expect_data_error([&] { load_retrieval(read_task_spec(dir)); }, {"corpus.jsonl:2:", "duplicate _id \"d1\""});
}

TEST(Checksum, ChangesWithAnyByteOfTheData) {
  fs::path dir = make_task("checksum", STS_JSON);
  test::write_file(dir / "test.jsonl", "{\"sentence1\": \"a\", \"sentence2\": \"b\", \"score\": 1}\n");
  std::string a = dataset_checksum(read_task_spec(dir));
  EXPECT_EQ(a, dataset_checksum(read_task_spec(dir)));
  test::write_file(dir / "test.jsonl", "{\"sentence1\": \"a\", \"sentence2\": \"b\", \"score\": 2}\n");
  EXPECT_NE(a, dataset_checksum(read_task_spec(dir)));
}

// The draw is written out (not std::shuffle) so that every standard library
// gives the same calibration texts. Expected values from an independent
// Python MT19937-64 (Matsumoto & Nishimura's reference, checked against the
// C++ standard's 10000th output for the default seed) and the partial
// Fisher-Yates the header describes: pool [a, b, c, d, e], for i < count
// swap i with i + next() % (5 - i).
TEST(CalibrationTexts, AFixedSampleOfTheDistinctTexts) {
  fs::path dir = make_task("calib", STS_JSON);
  test::write_file(dir / "test.jsonl",
                   "{\"sentence1\": \"a\", \"sentence2\": \"c\", \"score\": 1}\n"
                   "{\"sentence1\": \"b\", \"sentence2\": \"b\", \"score\": 2}\n"
                   "{\"sentence1\": \"a\", \"sentence2\": \"d\", \"score\": 3}\n"
                   "{\"sentence1\": \"\", \"sentence2\": \"e\", \"score\": 4}\n");
  using V = std::vector<std::string>;
  EXPECT_EQ(calibration_texts({dir}, 3, 7), (V{"a", "d", "c"}));
  EXPECT_EQ(calibration_texts({dir}, 3, 0), (V{"e", "a", "d"}));
  EXPECT_EQ(calibration_texts({dir}, 9, 0), (V{"e", "a", "d", "c", "b"}));  // all distinct texts, none empty
  EXPECT_EQ(calibration_texts({dir}, 0, 0), V{});
  // embed's input: the same pool (first-seen order, duplicates and empty
  // texts dropped) gives the same draw.
  const V input{"a", "b", "a", "", "c", "b", "d", "e"};
  EXPECT_EQ(sample_texts(input, 3, 7), (V{"a", "d", "c"}));
  EXPECT_EQ(sample_texts(input, 9, 0), (V{"e", "a", "d", "c", "b"}));
  EXPECT_EQ(sample_texts({}, 4, 0), V{});
}
