// The results database: schema versioning, refusal of foreign or newer files
// (left untouched), duplicate-free recording, concurrent writers, and
// consistency after a writer is killed mid-run.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "harness/error.h"
#include "harness/result_store.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace embeval;

namespace {

EncoderInfo model_info(const std::string& spec) {
  EncoderInfo m;
  m.spec = spec;
  m.name = spec;
  m.fingerprint = "fp-" + spec;
  m.dim = 8;
  return m;
}

TaskRecord task_record(const std::string& name) {
  TaskRecord t;
  t.name = name;
  t.type = "STS";
  t.split = "test";
  t.main_score = "cosine_spearman";
  t.dataset_checksum = "c-" + name;
  return t;
}

ResultRecord result(int64_t run, int64_t model, int64_t task, double score) {
  ResultRecord r;
  r.run_id = run;
  r.model_id = model;
  r.task_id = task;
  r.main_score = score;
  r.scores = {{"cosine_spearman", score}, {"pearson", nullptr}, {"v_measures", {0.1, 0.2}}};
  r.timing.encode_seconds = 2.0;
  r.timing.encoded_items = 10;
  return r;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int64_t count_rows(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr);
  int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
  sqlite3_finalize(st);
  sqlite3_close(h);
  return n;
}

// Runs `undo` (SQL taking back what later migrations added) on the file and
// stamps it with `version`: the file as that schema version left it.
void downgrade(const fs::path& db, const std::string& undo, int version) {
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  const std::string sql = undo + "PRAGMA user_version = " + std::to_string(version);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(h);
}

// What migration v5 added, taken away again: a file as schema v4 left it.
constexpr const char* UNDO_V5 = "ALTER TABLE timings DROP COLUMN latency_reference_p50_ms; ";
// What migrations v5 and v4 added, taken away again: a file as schema v3 left it.
constexpr const char* UNDO_V4 =
    "ALTER TABLE timings DROP COLUMN latency_reference_p50_ms; ALTER TABLE results DROP COLUMN protocol; ";
// What migrations v5 to v3 added, taken away again: a file as schema v2 left
// it (the runs table's wider CHECK stays; v2 files hold no status it rejects).
constexpr const char* UNDO_V3 =
    "ALTER TABLE timings DROP COLUMN latency_reference_p50_ms; ALTER TABLE results DROP COLUMN protocol; "
    "ALTER TABLE results DROP COLUMN scoring_version; ALTER TABLE results DROP COLUMN prompt_key; "
    "ALTER TABLE tasks DROP COLUMN mteb_name; DROP TABLE task_failures; DROP TABLE task_claims; ";

}  // namespace

TEST(ResultStore, CreatesVersionedSchemaAndRoundTrips) {
  fs::path db = test::scratch_dir("store/roundtrip") / "r.sqlite";
  {
    ResultStore s(db);
    EXPECT_EQ(s.schema_version(), ResultStore::SCHEMA_VERSION);
    int64_t run = s.begin_run(RunRecord{});
    int64_t m = s.upsert_model(model_info("baseline:x"));
    EXPECT_EQ(s.upsert_model(model_info("baseline:x")), m);  // same key, same row
    int64_t t = s.upsert_task(task_record("LCQMC"));
    EXPECT_EQ(s.recorded(m, t, ScoringKey{}), ResultStore::Recorded::none);
    EXPECT_TRUE(s.record_result(result(run, m, t, 0.25), false));
    s.end_run(run, "finished");
  }
  ResultStore s(db);  // reopening migrates nothing and keeps the rows
  auto rs = s.latest_results();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].model.info.spec, "baseline:x");
  EXPECT_EQ(rs[0].task.task.name, "LCQMC");
  EXPECT_DOUBLE_EQ(*rs[0].main_score, 0.25);
  EXPECT_TRUE(rs[0].scores["pearson"].is_null());
  EXPECT_EQ(rs[0].scores["v_measures"].size(), 2u);
  EXPECT_DOUBLE_EQ(rs[0].timing.encode_seconds, 2.0);
  // Scalars (numbers and nulls) get one row each in `scores`; lists do not.
  EXPECT_EQ(count_rows(db, "SELECT COUNT(*) FROM scores"), 2);
  EXPECT_EQ(count_rows(db, "SELECT items_per_second FROM timings"), 5);
  ASSERT_EQ(s.runs().size(), 1u);
  EXPECT_EQ(s.runs()[0].status, "finished");
}

// A file written by schema version 1 (no timings.background_cpu_share) opens,
// migrates in place, keeps its rows (null load), and records the new column.
TEST(ResultStore, MigratesVersion1FilesKeepingTheirRows) {
  fs::path db = test::scratch_dir("store/migrate") / "r.sqlite";
  {
    ResultStore s(db);
    int64_t run = s.begin_run(RunRecord{});
    EXPECT_TRUE(s.record_result(result(run, s.upsert_model(model_info("old")), s.upsert_task(task_record("T")), 0.5), false));
  }
  // what version 1 left: the same tables without the v2 column
  downgrade(db, std::string(UNDO_V3) + "ALTER TABLE timings DROP COLUMN background_cpu_share; ", 1);
  ASSERT_EQ(count_rows(db, "PRAGMA user_version"), 1);
  ResultStore s(db);
  EXPECT_EQ(s.schema_version(), ResultStore::SCHEMA_VERSION);
  auto before = s.latest_results();
  ASSERT_EQ(before.size(), 1u);
  EXPECT_DOUBLE_EQ(*before[0].main_score, 0.5);
  EXPECT_FALSE(before[0].timing.background_cpu_share.has_value());
  ResultRecord r = result(s.begin_run(RunRecord{}), s.upsert_model(model_info("new")), s.upsert_task(task_record("T")), 0.7);
  r.timing.background_cpu_share = 0.375;
  EXPECT_TRUE(s.record_result(r, false));
  auto after = s.latest_results();
  ASSERT_EQ(after.size(), 2u);
  for (const auto& row : after) {
    if (row.model.info.spec == "new") EXPECT_DOUBLE_EQ(row.timing.background_cpu_share.value_or(-1), 0.375);
    else EXPECT_FALSE(row.timing.background_cpu_share.has_value());
  }
}

// Reuse is keyed on the scoring version and the prompts too: a result of
// older scoring code, of other prompts, or from before the key was kept
// (schema v2 rows, NULL) is stale, and a new one may be recorded beside it.
TEST(ResultStore, ResultsOfOtherScoringCodeOrPromptsAreStale) {
  fs::path db = test::scratch_dir("store/stale") / "r.sqlite";
  {
    ResultStore s(db);
    int64_t run = s.begin_run(RunRecord{});
    EXPECT_TRUE(s.record_result(result(run, s.upsert_model(model_info("old")), s.upsert_task(task_record("T")), 0.5), false));
  }
  downgrade(db, UNDO_V3, 2);  // a row as schema v2 left it: no key columns
  ResultStore s(db);
  const int64_t m = s.upsert_model(model_info("old")), t = s.upsert_task(task_record("T"));
  const std::string key = ResultStore::prompt_key({{"query", "q: "}, {"passage", ""}, {"text", ""}});
  EXPECT_EQ(key, "query=q: \npassage=\ntext=\n");
  std::string why;
  EXPECT_EQ(s.recorded(m, t, {1, key, ""}, &why), ResultStore::Recorded::stale);
  EXPECT_EQ(why, "recorded before scoring versions were kept");
  ResultRecord r = result(s.begin_run(RunRecord{}), m, t, 0.6);
  r.key = {1, key, ""};
  EXPECT_TRUE(s.record_result(r, false));  // beside the stale row, not instead of it
  EXPECT_EQ(count_rows(db, "SELECT COUNT(*) FROM results"), 2);
  EXPECT_EQ(s.recorded(m, t, {1, key, ""}), ResultStore::Recorded::current);
  EXPECT_FALSE(s.record_result(r, false));  // now a current one exists
  EXPECT_EQ(s.recorded(m, t, {2, key, ""}, &why), ResultStore::Recorded::stale);
  EXPECT_EQ(why, "recorded with scoring version 1, now 2");
  EXPECT_EQ(s.recorded(m, t, {1, ResultStore::prompt_key({{"query", ""}}), ""}, &why), ResultStore::Recorded::stale);
  EXPECT_EQ(why, "recorded with other prompts");
  EXPECT_EQ(s.recorded(m, t, {1, key, "sklearn-1.4"}, &why), ResultStore::Recorded::stale);
  EXPECT_EQ(why, "recorded with scoring protocol (none), now sklearn-1.4");
  EXPECT_EQ(s.recorded(m, s.upsert_task(task_record("U")), {1, key, ""}), ResultStore::Recorded::none);
  auto rs = s.latest_results();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_DOUBLE_EQ(*rs[0].main_score, 0.6);
}

// Schema v4 keys reuse on the scoring protocol as well. A v3 file's
// Classification and Clustering results were all computed with sklearn 1.2's
// numerics, so the migration marks them so and they stay reusable under the
// default protocol; other types get none. A result under another protocol
// is stale, and the claim that re-evaluates it says why.
TEST(ResultStore, ProtocolIsPartOfTheKeyAndV3ResultsKeepTheirs) {
  fs::path db = test::scratch_dir("store/protocol") / "r.sqlite";
  const std::string key = ResultStore::prompt_key({{"text", ""}});
  TaskRecord cls = task_record("C"), sts = task_record("S");
  cls.type = "Classification";
  cls.main_score = "accuracy";
  {
    ResultStore s(db);
    const int64_t run = s.begin_run(RunRecord{}), m = s.upsert_model(model_info("m"));
    for (int64_t t : {s.upsert_task(cls), s.upsert_task(sts)}) {
      ResultRecord r = result(run, m, t, 0.5);
      r.key = {1, key, ""};
      EXPECT_TRUE(s.record_result(r, false));
    }
  }
  downgrade(db, UNDO_V4, 3);  // as schema v3 left it
  ResultStore s(db);
  EXPECT_EQ(s.schema_version(), ResultStore::SCHEMA_VERSION);
  const int64_t m = s.upsert_model(model_info("m")), c = s.upsert_task(cls), t = s.upsert_task(sts);
  EXPECT_EQ(s.recorded(m, c, {1, key, "sklearn-1.2"}), ResultStore::Recorded::current);
  EXPECT_EQ(s.recorded(m, t, {1, key, ""}), ResultStore::Recorded::current);
  std::string why;
  EXPECT_EQ(s.recorded(m, c, {1, key, "sklearn-1.4"}, &why), ResultStore::Recorded::stale);
  EXPECT_EQ(why, "recorded with scoring protocol sklearn-1.2, now sklearn-1.4");
  const int64_t run = s.begin_run(RunRecord{});
  std::string holder, stale_why;
  EXPECT_EQ(s.claim_task(run, m, c, {1, key, "sklearn-1.2"}, false, &holder, &stale_why), ResultStore::Claim::recorded);
  EXPECT_EQ(s.claim_task(run, m, c, {1, key, "sklearn-1.4"}, false, &holder, &stale_why), ResultStore::Claim::claimed);
  EXPECT_EQ(stale_why, "recorded with scoring protocol sklearn-1.2, now sklearn-1.4");
  ResultRecord r = result(run, m, c, 0.75);
  r.key = {1, key, "sklearn-1.4"};
  EXPECT_TRUE(s.record_result(r, false));
  bool seen = false;
  for (const auto& row : s.latest_results())
    if (row.task.task.name == "C") {
      seen = true;
      EXPECT_EQ(row.protocol, "sklearn-1.4");
      EXPECT_DOUBLE_EQ(*row.main_score, 0.75);
    }
  EXPECT_TRUE(seen);
  EXPECT_EQ(count_rows(db, "SELECT COUNT(*) FROM results WHERE protocol = 'sklearn-1.2'"), 1);
}

TEST(ResultStore, NoDuplicatesUnlessReplacing) {
  fs::path db = test::scratch_dir("store/dups") / "r.sqlite";
  ResultStore s(db);
  int64_t run = s.begin_run(RunRecord{});
  int64_t m = s.upsert_model(model_info("a")), t = s.upsert_task(task_record("T"));
  EXPECT_TRUE(s.record_result(result(run, m, t, 0.1), false));
  EXPECT_FALSE(s.record_result(result(run, m, t, 0.2), false));  // another writer got there first
  EXPECT_EQ(count_rows(db, "SELECT COUNT(*) FROM results"), 1);
  EXPECT_TRUE(s.record_result(result(run, m, t, 0.3), true));  // --force: newest wins, history kept
  EXPECT_EQ(count_rows(db, "SELECT COUNT(*) FROM results"), 2);
  auto rs = s.latest_results();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_DOUBLE_EQ(*rs[0].main_score, 0.3);
}

TEST(ResultStore, RefusesFilesThatAreNotOursAndLeavesThemUntouched) {
  fs::path dir = test::scratch_dir("store/foreign");
  fs::path text = dir / "notes.sqlite";
  test::write_file(text, "this is not a database, just text that happens to be long enough to have a header\n");
  std::string before = slurp(text);
  EXPECT_NE(test::error_of<UserError>([&] { ResultStore s(text); }).find("not an SQLite database"), std::string::npos);
  EXPECT_EQ(slurp(text), before);

  fs::path other = dir / "other.sqlite";
  sqlite3* h = nullptr;
  sqlite3_open(other.c_str(), &h);
  sqlite3_exec(h, "CREATE TABLE invoices (id INTEGER)", nullptr, nullptr, nullptr);
  sqlite3_close(h);
  EXPECT_NE(test::error_of<UserError>([&] { ResultStore s(other); }).find("not an embeval results database"), std::string::npos);

  fs::path newer = dir / "newer.sqlite";
  { ResultStore s(newer); }
  sqlite3_open(newer.c_str(), &h);
  sqlite3_exec(h, "PRAGMA user_version = 99", nullptr, nullptr, nullptr);
  sqlite3_close(h);
  std::string msg = test::error_of<UserError>([&] { ResultStore s(newer); });
  EXPECT_NE(msg.find("schema version 99 is newer"), std::string::npos) << msg;
  EXPECT_NE(msg.find(newer.string()), std::string::npos) << msg;
  EXPECT_EQ(count_rows(newer, "PRAGMA user_version"), 99);

  EXPECT_NE(test::error_of<UserError>([&] { ResultStore::open_existing(dir / "missing.sqlite"); }).find("database not found"),
            std::string::npos);
}

TEST(ResultStore, ConcurrentWritersBothSucceed) {
  fs::path db = test::scratch_dir("store/concurrent") / "r.sqlite";
  { ResultStore init(db); }
  auto writer = [&](const std::string& model, int n) {
    ResultStore s(db);
    int64_t run = s.begin_run(RunRecord{});
    int64_t m = s.upsert_model(model_info(model));
    for (int i = 0; i < n; ++i) {
      int64_t t = s.upsert_task(task_record("T" + std::to_string(i)));
      EXPECT_TRUE(s.record_result(result(run, m, t, i * 0.01), false));
    }
    s.end_run(run, "finished");
  };
  std::thread a(writer, "a", 40), b(writer, "b", 40);
  a.join();
  b.join();
  EXPECT_EQ(count_rows(db, "SELECT COUNT(*) FROM results"), 80);
  EXPECT_EQ(count_rows(db, "SELECT COUNT(*) FROM tasks"), 40);  // shared task rows, no duplicates
}

// A writer killed at arbitrary moments never leaves a result without its
// scores and timing rows, and the file passes SQLite's integrity check.
TEST(ResultStore, KilledWriterLeavesConsistentFile) {
  fs::path db = test::scratch_dir("store/killed") / "r.sqlite";
  { ResultStore init(db); }
  for (int attempt = 0; attempt < 5; ++attempt) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ResultStore s(db);
      int64_t run = s.begin_run(RunRecord{});
      int64_t m = s.upsert_model(model_info("m" + std::to_string(attempt)));
      for (int i = 0;; ++i) {
        int64_t t = s.upsert_task(task_record("T" + std::to_string(i)));
        s.record_result(result(run, m, t, 0.5), false);
      }
    }
    usleep(30000 + attempt * 20000);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
  }
  EXPECT_GT(count_rows(db, "SELECT COUNT(*) FROM results"), 0);
  EXPECT_EQ(count_rows(db, "SELECT COUNT(*) FROM results r WHERE NOT EXISTS "
                           "(SELECT 1 FROM timings g WHERE g.result_id = r.id)"), 0);
  EXPECT_EQ(count_rows(db, "SELECT COUNT(*) FROM results r WHERE (SELECT COUNT(*) FROM scores s "
                           "WHERE s.result_id = r.id) != 2"), 0);
  ResultStore s(db);
  EXPECT_EQ(count_rows(db, "SELECT COUNT(*) FROM runs WHERE status = 'running'"), 5);  // killed runs stay visible
  sqlite3* h = nullptr;
  sqlite3_open(db.c_str(), &h);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "ok");
  sqlite3_finalize(st);
  sqlite3_close(h);
}

// Schema v5 records the fp32 model's single-text p50 measured in turn with a
// variant's. A v4 file opens, keeps its rows (no reference time), and
// records the new column; a round trip keeps the value.
TEST(ResultStore, MigratesVersion4FilesAndKeepsTheReferenceLatency) {
  fs::path db = test::scratch_dir("store/latency_ref") / "r.sqlite";
  {
    ResultStore s(db);
    const int64_t run = s.begin_run(RunRecord{});
    EXPECT_TRUE(s.record_result(result(run, s.upsert_model(model_info("old")), s.upsert_task(task_record("T")), 0.5), false));
  }
  downgrade(db, UNDO_V5, 4);  // as schema v4 left it
  ASSERT_EQ(count_rows(db, "PRAGMA user_version"), 4);
  {
    ResultStore s(db);
    EXPECT_EQ(s.schema_version(), ResultStore::SCHEMA_VERSION);
    auto before = s.latest_results();
    ASSERT_EQ(before.size(), 1u);
    EXPECT_DOUBLE_EQ(*before[0].main_score, 0.5);
    EXPECT_FALSE(before[0].timing.latency_reference_p50_ms.has_value());
    ResultRecord r = result(s.begin_run(RunRecord{}), s.upsert_model(model_info("new")), s.upsert_task(task_record("T")), 0.7);
    r.timing.latency_samples = 50;
    r.timing.latency_p50_ms = 0.25;
    r.timing.latency_reference_p50_ms = 0.5;
    EXPECT_TRUE(s.record_result(r, false));
  }
  ResultStore s(db);  // reopened: the value came from the file
  for (const auto& row : s.latest_results()) {
    if (row.model.info.spec == "new") EXPECT_DOUBLE_EQ(row.timing.latency_reference_p50_ms.value_or(-1), 0.5);
    else EXPECT_FALSE(row.timing.latency_reference_p50_ms.has_value());
  }
}
