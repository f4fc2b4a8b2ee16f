#include "harness/result_store.h"

#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include <fmt/format.h>

#include "harness/error.h"
#include "harness/system_info.h"

namespace embeval {
namespace {

// Migration i takes the schema from version i to i + 1. Never edit a
// released step: add a new one and bump SCHEMA_VERSION.
const char* const MIGRATIONS[] = {
    R"sql(
CREATE TABLE runs (
  id INTEGER PRIMARY KEY,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
  error TEXT,
  command TEXT,
  harness_version TEXT, git_revision TEXT, build_type TEXT,
  host TEXT, os TEXT, cpu_model TEXT, cpu_threads INTEGER, threads INTEGER,
  gpu TEXT, libtorch_version TEXT, blas TEXT
);
CREATE TABLE models (
  id INTEGER PRIMARY KEY,
  spec TEXT NOT NULL,
  name TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  device TEXT NOT NULL,
  dimension INTEGER NOT NULL,
  similarity TEXT NOT NULL,
  n_parameters INTEGER,
  max_tokens INTEGER,
  dtype TEXT,
  quantization TEXT,
  revision TEXT,
  UNIQUE (spec, fingerprint, device)
);
CREATE TABLE tasks (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  split TEXT NOT NULL,
  language TEXT,
  main_score TEXT NOT NULL,
  version INTEGER NOT NULL,
  dataset_checksum TEXT NOT NULL,
  dataset_revision TEXT,
  source_repo TEXT,
  license TEXT,
  path TEXT,
  UNIQUE (name, split, version, dataset_checksum)
);
CREATE TABLE results (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  model_id INTEGER NOT NULL REFERENCES models(id),
  task_id INTEGER NOT NULL REFERENCES tasks(id),
  main_score REAL,
  scores_json TEXT NOT NULL,
  prompts_json TEXT,
  evaluation_seconds REAL,
  created_at TEXT NOT NULL
);
CREATE INDEX results_by_model_task ON results (model_id, task_id, id);
CREATE TABLE scores (
  result_id INTEGER NOT NULL REFERENCES results(id) ON DELETE CASCADE,
  metric TEXT NOT NULL,
  value REAL,
  PRIMARY KEY (result_id, metric)
);
CREATE TABLE timings (
  result_id INTEGER PRIMARY KEY REFERENCES results(id) ON DELETE CASCADE,
  encode_seconds REAL,
  encoded_items INTEGER,
  encoded_tokens INTEGER,
  items_per_second REAL,
  tokens_per_second REAL,
  evaluate_seconds REAL,
  peak_rss_bytes INTEGER,
  peak_device_bytes INTEGER,
  latency_samples INTEGER,
  latency_p50_ms REAL,
  latency_p95_ms REAL,
  latency_p99_ms REAL,
  latency_mean_ms REAL
);
)sql",
    // v2: how busy the machine was while a task was timed.
    "ALTER TABLE timings ADD COLUMN background_cpu_share REAL;",
    // v3: what a result's reuse is keyed on besides model and dataset (NULL in
    // older rows, which are then never reused); tasks that failed, with their
    // error; runs may end 'interrupted' (a CHECK cannot be altered in place:
    // the table is rebuilt, SQLite's documented way, foreign keys off).
    R"sql(
ALTER TABLE results ADD COLUMN scoring_version INTEGER;
ALTER TABLE tasks ADD COLUMN mteb_name TEXT;
ALTER TABLE results ADD COLUMN prompt_key TEXT;
CREATE TABLE task_failures (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  model_id INTEGER NOT NULL REFERENCES models(id),
  task_id INTEGER NOT NULL REFERENCES tasks(id),
  error TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE runs_v3 (
  id INTEGER PRIMARY KEY,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
  error TEXT,
  command TEXT,
  harness_version TEXT, git_revision TEXT, build_type TEXT,
  host TEXT, os TEXT, cpu_model TEXT, cpu_threads INTEGER, threads INTEGER,
  gpu TEXT, libtorch_version TEXT, blas TEXT
);
INSERT INTO runs_v3 SELECT * FROM runs;
CREATE TABLE task_claims (
  model_id INTEGER NOT NULL REFERENCES models(id),
  task_id INTEGER NOT NULL REFERENCES tasks(id),
  run_id INTEGER NOT NULL,
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  pid_start INTEGER,
  claimed_at TEXT NOT NULL,
  PRIMARY KEY (model_id, task_id)
);
DROP TABLE runs;
ALTER TABLE runs_v3 RENAME TO runs;
)sql",
    // v4: the scoring protocol a result was computed under ('' where none
    // applies). Classification and Clustering results of older versions were
    // all computed with sklearn 1.2's numerics, the only protocol there was.
    R"sql(
ALTER TABLE results ADD COLUMN protocol TEXT NOT NULL DEFAULT '';
UPDATE results SET protocol = 'sklearn-1.2'
  WHERE task_id IN (SELECT id FROM tasks WHERE type IN ('Classification', 'Clustering'));
)sql",
    // v5: the fp32 model's single-text p50 measured in turn with a variant's
    // (TimingRecord::latency_reference_p50_ms); older rows have none.
    R"sql(
ALTER TABLE timings ADD COLUMN latency_reference_p50_ms REAL;
)sql",
};
static_assert(sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0]) == ResultStore::SCHEMA_VERSION);

const char* const OUR_TABLES[] = {"runs", "models", "tasks", "results", "scores", "timings", "task_failures", "task_claims"};

// Fault injection for the crash tests (tests/cli/test_runs_survive.py), as SQLite's
// own tests do it: with EMBEVAL_TEST_KILL_IN_WRITE=N the process kills itself
// with SIGKILL in its N-th result write, after the rows are inserted and
// before the commit. Unset (always, outside those tests) it does nothing.
void kill_point_in_write() {
  static const long at = [] {
    const char* v = std::getenv("EMBEVAL_TEST_KILL_IN_WRITE");
    return v && *v ? std::strtol(v, nullptr, 10) : 0L;
  }();
  static long writes = 0;
  if (at > 0 && ++writes == at) ::raise(SIGKILL);
}

std::string now_utc() {
  // SQLite's own clock keeps every timestamp in one format.
  return "strftime('%Y-%m-%dT%H:%M:%fZ','now')";
}

void bind_optional_int(SqliteStatement& s, int i, int64_t v) {
  if (v < 0) s.bind_null(i);
  else s.bind(i, v);
}

// Scalar metrics go to the scores table (numbers, and null where MTEB leaves
// a value undefined); nested lists stay in scores_json only.
void insert_scalar_scores(SqliteDb& db, int64_t result_id, const nlohmann::ordered_json& scores) {
  SqliteStatement ins(db, "INSERT INTO scores (result_id, metric, value) VALUES (?, ?, ?)");
  for (const auto& [key, value] : scores.items()) {
    if (!value.is_number() && !value.is_null()) continue;
    ins.reset();
    ins.bind(1, result_id).bind(2, key);
    if (value.is_null()) ins.bind_null(3);
    else ins.bind(3, value.get<double>());
    ins.run();
  }
}

}  // namespace

ResultStore::ResultStore(const std::filesystem::path& file) : ResultStore(file, true) {}

std::unique_ptr<ResultStore> ResultStore::open_existing(const std::filesystem::path& file) {
  return std::unique_ptr<ResultStore>(new ResultStore(file, false));
}

ResultStore::ResultStore(const std::filesystem::path& file, bool create)
    : db_(std::make_unique<SqliteDb>(file, create)) {
  // Reading user_version first detects files that are not SQLite before
  // anything is written to them.
  int version = schema_version();
  if (version > SCHEMA_VERSION)
    db_->fail(fmt::format("schema version {} is newer than this embeval supports ({}); upgrade embeval",
                          version, SCHEMA_VERSION));
  if (version == 0) {
    SqliteStatement q(*db_, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'");
    while (q.step()) {
      std::string name = q.column_text(0);
      bool ours = false;
      for (const char* t : OUR_TABLES) ours |= name == t;
      if (!ours) db_->fail(fmt::format("not an embeval results database (it has a table \"{}\")", name));
    }
  }
  db_->exec("PRAGMA journal_mode = WAL");
  db_->exec("PRAGMA synchronous = FULL");
  db_->exec("PRAGMA foreign_keys = ON");
  if (version < SCHEMA_VERSION) migrate();
}

int ResultStore::schema_version() {
  SqliteStatement q(*db_, "PRAGMA user_version");
  q.step();
  return static_cast<int>(q.column_int(0));
}

void ResultStore::migrate() {
  // Off while tables are rebuilt (it cannot change inside a transaction);
  // the rebuilt schema is checked before the commit.
  db_->exec("PRAGMA foreign_keys = OFF");
  SqliteTransaction tx(*db_);
  // Re-read inside the write lock: a concurrent process may have migrated.
  int version = schema_version();
  if (version > SCHEMA_VERSION)
    db_->fail(fmt::format("schema version {} is newer than this embeval supports ({})", version, SCHEMA_VERSION));
  for (int v = version; v < SCHEMA_VERSION; ++v) db_->exec(MIGRATIONS[v]);
  db_->exec(fmt::format("PRAGMA user_version = {}", SCHEMA_VERSION));
  {
    SqliteStatement check(*db_, "PRAGMA foreign_key_check");
    if (check.step()) db_->fail("migration left a dangling reference in table " + check.column_text(0));
  }
  tx.commit();
  db_->exec("PRAGMA foreign_keys = ON");
}

int64_t ResultStore::begin_run(const RunRecord& r) {
  SqliteTransaction tx(*db_);
  SqliteStatement s(*db_, "INSERT INTO runs (started_at, status, command, harness_version, git_revision, build_type, "
                          "host, os, cpu_model, cpu_threads, threads, gpu, libtorch_version, blas) VALUES (" +
                              now_utc() + ", 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.bind(1, r.command).bind(2, r.harness_version).bind(3, r.git_revision).bind(4, r.build_type);
  s.bind(5, r.host).bind(6, r.os).bind(7, r.cpu_model).bind(8, r.cpu_threads).bind(9, r.threads);
  s.bind(10, r.gpu).bind(11, r.libtorch_version).bind(12, r.blas);
  s.run();
  int64_t id = db_->last_insert_rowid();
  tx.commit();
  return id;
}

void ResultStore::end_run(int64_t run_id, const std::string& status, const std::string& error) {
  SqliteTransaction tx(*db_);
  SqliteStatement s(*db_, "UPDATE runs SET status = ?, error = ?, finished_at = " + now_utc() + " WHERE id = ?");
  s.bind(1, status);
  if (error.empty()) s.bind_null(2);
  else s.bind(2, error);
  s.bind(3, run_id);
  s.run();
  tx.commit();
}

int64_t ResultStore::upsert_model(const EncoderInfo& m) {
  SqliteTransaction tx(*db_);
  SqliteStatement find(*db_, "SELECT id FROM models WHERE spec = ? AND fingerprint = ? AND device = ?");
  find.bind(1, m.spec).bind(2, m.fingerprint).bind(3, m.device);
  if (find.step()) return find.column_int(0);  // the transaction rolls back: nothing was written
  SqliteStatement ins(*db_, "INSERT INTO models (spec, name, fingerprint, device, dimension, similarity, n_parameters, "
                            "max_tokens, dtype, quantization, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  ins.bind(1, m.spec).bind(2, m.name).bind(3, m.fingerprint).bind(4, m.device).bind(5, m.dim);
  ins.bind(6, similarity_name(m.similarity)).bind(7, m.n_parameters).bind(8, m.max_tokens).bind(9, m.dtype);
  ins.bind(10, m.quantization).bind(11, m.revision);
  ins.run();
  int64_t id = db_->last_insert_rowid();
  tx.commit();
  return id;
}

int64_t ResultStore::upsert_task(const TaskRecord& t) {
  SqliteTransaction tx(*db_);
  SqliteStatement find(*db_, "SELECT id FROM tasks WHERE name = ? AND split = ? AND version = ? AND dataset_checksum = ?");
  find.bind(1, t.name).bind(2, t.split).bind(3, static_cast<int64_t>(t.version)).bind(4, t.dataset_checksum);
  if (find.step()) return find.column_int(0);
  SqliteStatement ins(*db_, "INSERT INTO tasks (name, type, split, language, main_score, version, dataset_checksum, "
                            "dataset_revision, source_repo, license, path, mteb_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                            "?, ?, ?)");
  ins.bind(1, t.name).bind(2, t.type).bind(3, t.split).bind(4, t.language).bind(5, t.main_score);
  ins.bind(6, static_cast<int64_t>(t.version)).bind(7, t.dataset_checksum).bind(8, t.dataset_revision);
  ins.bind(9, t.source_repo).bind(10, t.license).bind(11, t.path).bind(12, t.mteb_name);
  ins.run();
  int64_t id = db_->last_insert_rowid();
  tx.commit();
  return id;
}

ResultStore::Recorded ResultStore::recorded(int64_t model_id, int64_t task_id, const ScoringKey& want,
                                            std::string* why) {
  SqliteStatement q(*db_, "SELECT scoring_version, prompt_key, protocol FROM results WHERE model_id = ? AND task_id = ? "
                          "ORDER BY id DESC");
  q.bind(1, model_id).bind(2, task_id);
  bool any = false;
  while (q.step()) {
    const std::optional<int64_t> version = q.is_null(0) ? std::nullopt : std::optional<int64_t>(q.column_int(0));
    const std::optional<std::string> key = q.is_null(1) ? std::nullopt : std::optional<std::string>(q.column_text(1));
    const std::string protocol = q.column_text(2);
    if (version == want.scoring_version && key == want.prompt_key && protocol == want.protocol) return Recorded::current;
    if (!any && why) {
      if (!version)
        *why = "recorded before scoring versions were kept";
      else if (*version != want.scoring_version)
        *why = fmt::format("recorded with scoring version {}, now {}", *version, want.scoring_version);
      else if (key != want.prompt_key)
        *why = "recorded with other prompts";
      else
        *why = fmt::format("recorded with scoring protocol {}, now {}", protocol.empty() ? "(none)" : protocol,
                           want.protocol.empty() ? "(none)" : want.protocol);
    }
    any = true;
  }
  return any ? Recorded::stale : Recorded::none;
}

std::string ResultStore::prompt_key(const std::vector<std::pair<std::string, std::string>>& prompts_by_role) {
  std::string key;
  for (const auto& [role, prompt] : prompts_by_role) key += role + "=" + prompt + '\n';
  return key;
}

ResultStore::Claim ResultStore::claim_task(int64_t run_id, int64_t model_id, int64_t task_id, const ScoringKey& key,
                                          bool force, std::string* holder, std::string* stale_why) {
  SqliteTransaction tx(*db_);
  std::string why;
  const Recorded state = force ? Recorded::none : recorded(model_id, task_id, key, &why);
  if (state == Recorded::current) return Claim::recorded;
  const std::string me = host_name();
  {
    SqliteStatement q(*db_, "SELECT run_id, host, pid, pid_start FROM task_claims WHERE model_id = ? AND task_id = ?");
    q.bind(1, model_id).bind(2, task_id);
    if (q.step()) {
      const int64_t run = q.column_int(0), pid = q.column_int(2);
      const std::string host = q.column_text(1);
      const std::optional<uint64_t> start =
          q.is_null(3) ? std::nullopt : std::optional<uint64_t>(static_cast<uint64_t>(q.column_int(3)));
      // A claim lives while its process does: on this host that can be
      // checked (pid and start time, so a reused pid does not count); a claim
      // from another host is honoured.
      const bool alive = run != run_id && (host != me || (start && process_start_ticks(static_cast<int>(pid)) == start));
      if (alive) {
        if (holder) *holder = fmt::format("run {} (process {} on {})", run, pid, host);
        return Claim::held;
      }
    }
  }
  SqliteStatement ins(*db_, "INSERT OR REPLACE INTO task_claims (model_id, task_id, run_id, host, pid, pid_start, "
                            "claimed_at) VALUES (?, ?, ?, ?, ?, ?, " + now_utc() + ")");
  const int pid = static_cast<int>(::getpid());
  ins.bind(1, model_id).bind(2, task_id).bind(3, run_id).bind(4, me).bind(5, static_cast<int64_t>(pid));
  if (auto start = process_start_ticks(pid)) ins.bind(6, static_cast<int64_t>(*start));
  else ins.bind_null(6);
  ins.run();
  tx.commit();
  if (state == Recorded::stale && stale_why) *stale_why = why;
  return Claim::claimed;
}

void ResultStore::release_claims(int64_t run_id) {
  SqliteTransaction tx(*db_);
  SqliteStatement del(*db_, "DELETE FROM task_claims WHERE run_id = ?");
  del.bind(1, run_id);
  del.run();
  tx.commit();
}

void ResultStore::record_failure(int64_t run_id, int64_t model_id, int64_t task_id, const std::string& error) {
  SqliteTransaction tx(*db_);
  {
    SqliteStatement del(*db_, "DELETE FROM task_claims WHERE model_id = ? AND task_id = ? AND run_id = ?");
    del.bind(1, model_id).bind(2, task_id).bind(3, run_id);
    del.run();
  }
  SqliteStatement ins(*db_, "INSERT INTO task_failures (run_id, model_id, task_id, error, created_at) VALUES (?, ?, ?, ?, " +
                                now_utc() + ")");
  ins.bind(1, run_id).bind(2, model_id).bind(3, task_id).bind(4, error);
  ins.run();
  tx.commit();
}

bool ResultStore::record_result(const ResultRecord& r, bool replace) {
  SqliteTransaction tx(*db_);
  {  // this run's claim ends with the write, whoever's result stays
    SqliteStatement del(*db_, "DELETE FROM task_claims WHERE model_id = ? AND task_id = ? AND run_id = ?");
    del.bind(1, r.model_id).bind(2, r.task_id).bind(3, r.run_id);
    del.run();
  }
  if (!replace && recorded(r.model_id, r.task_id, r.key) == Recorded::current) {
    tx.commit();
    return false;
  }
  SqliteStatement ins(*db_, "INSERT INTO results (run_id, model_id, task_id, main_score, scores_json, prompts_json, "
                            "evaluation_seconds, scoring_version, prompt_key, protocol, created_at) VALUES (?, ?, ?, ?, "
                            "?, ?, ?, ?, ?, ?, " + now_utc() + ")");
  ins.bind(1, r.run_id).bind(2, r.model_id).bind(3, r.task_id).bind(4, r.main_score);
  ins.bind(5, r.scores.dump()).bind(6, r.prompts.dump()).bind(7, r.evaluation_seconds);
  ins.bind(8, static_cast<int64_t>(r.key.scoring_version)).bind(9, r.key.prompt_key).bind(10, r.key.protocol);
  ins.run();
  int64_t result_id = db_->last_insert_rowid();
  insert_scalar_scores(*db_, result_id, r.scores);

  const TimingRecord& t = r.timing;
  SqliteStatement tim(*db_, "INSERT INTO timings (result_id, encode_seconds, encoded_items, encoded_tokens, "
                            "items_per_second, tokens_per_second, evaluate_seconds, peak_rss_bytes, peak_device_bytes, "
                            "latency_samples, latency_p50_ms, latency_p95_ms, latency_p99_ms, latency_mean_ms, "
                            "background_cpu_share, latency_reference_p50_ms) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  tim.bind(1, result_id).bind(2, t.encode_seconds).bind(3, t.encoded_items);
  bind_optional_int(tim, 4, t.encoded_tokens);
  std::optional<double> ips, tps;
  if (t.encode_seconds > 0) {
    ips = static_cast<double>(t.encoded_items) / t.encode_seconds;
    if (t.encoded_tokens >= 0) tps = static_cast<double>(t.encoded_tokens) / t.encode_seconds;
  }
  tim.bind(5, ips).bind(6, tps).bind(7, t.evaluate_seconds);
  bind_optional_int(tim, 8, t.peak_rss_bytes);
  bind_optional_int(tim, 9, t.peak_device_bytes);
  tim.bind(10, t.latency_samples).bind(11, t.latency_p50_ms).bind(12, t.latency_p95_ms);
  tim.bind(13, t.latency_p99_ms).bind(14, t.latency_mean_ms).bind(15, t.background_cpu_share);
  tim.bind(16, t.latency_reference_p50_ms);
  tim.run();
  kill_point_in_write();
  tx.commit();
  return true;
}

std::vector<StoredResult> ResultStore::latest_results() {
  SqliteStatement q(*db_, R"sql(
SELECT r.id, r.run_id, r.main_score, r.scores_json, r.prompts_json, r.evaluation_seconds, r.created_at, r.protocol,
       m.id, m.spec, m.name, m.fingerprint, m.device, m.dimension, m.similarity, m.n_parameters, m.max_tokens,
       m.dtype, m.quantization, m.revision,
       t.id, t.name, t.type, t.split, t.language, t.main_score, t.version, t.dataset_checksum, t.dataset_revision,
       t.source_repo, t.license, t.path, t.mteb_name,
       g.encode_seconds, g.encoded_items, g.encoded_tokens, g.evaluate_seconds, g.peak_rss_bytes,
       g.peak_device_bytes, g.latency_samples, g.latency_p50_ms, g.latency_p95_ms, g.latency_p99_ms, g.latency_mean_ms,
       g.background_cpu_share, g.latency_reference_p50_ms
FROM results r
JOIN models m ON m.id = r.model_id
JOIN tasks t ON t.id = r.task_id
LEFT JOIN timings g ON g.result_id = r.id
WHERE r.id = (SELECT MAX(r2.id) FROM results r2 WHERE r2.model_id = r.model_id AND r2.task_id = r.task_id)
ORDER BY m.spec, m.device, t.name, t.id
)sql");
  std::vector<StoredResult> out;
  while (q.step()) {
    StoredResult s;
    int c = 0;
    s.id = q.column_int(c++);
    s.run_id = q.column_int(c++);
    s.main_score = q.column_optional_double(c++);
    s.scores = nlohmann::ordered_json::parse(q.column_text(c++));
    std::string prompts = q.column_text(c++);
    s.prompts = prompts.empty() ? nlohmann::json::object() : nlohmann::json::parse(prompts);
    s.evaluation_seconds = q.column_double(c++);
    s.created_at = q.column_text(c++);
    s.protocol = q.column_text(c++);
    EncoderInfo& m = s.model.info;
    s.model.id = q.column_int(c++);
    m.spec = q.column_text(c++);
    m.name = q.column_text(c++);
    m.fingerprint = q.column_text(c++);
    m.device = q.column_text(c++);
    m.dim = q.column_int(c++);
    std::string sim = q.column_text(c++);
    for (Similarity v : {SIMILARITY_COSINE, SIMILARITY_DOT, SIMILARITY_EUCLIDEAN, SIMILARITY_MANHATTAN})
      if (sim == similarity_name(v)) m.similarity = v;
    m.n_parameters = q.column_int(c++);
    m.max_tokens = q.column_int(c++);
    m.dtype = q.column_text(c++);
    m.quantization = q.column_text(c++);
    m.revision = q.column_text(c++);
    TaskRecord& t = s.task.task;
    s.task.id = q.column_int(c++);
    t.name = q.column_text(c++);
    t.type = q.column_text(c++);
    t.split = q.column_text(c++);
    t.language = q.column_text(c++);
    t.main_score = q.column_text(c++);
    t.version = static_cast<int>(q.column_int(c++));
    t.dataset_checksum = q.column_text(c++);
    t.dataset_revision = q.column_text(c++);
    t.source_repo = q.column_text(c++);
    t.license = q.column_text(c++);
    t.path = q.column_text(c++);
    t.mteb_name = q.column_text(c++);
    TimingRecord& g = s.timing;
    g.encode_seconds = q.column_double(c++);
    g.encoded_items = q.column_int(c++);
    g.encoded_tokens = q.is_null(c) ? -1 : q.column_int(c);
    ++c;
    g.evaluate_seconds = q.column_double(c++);
    g.peak_rss_bytes = q.is_null(c) ? -1 : q.column_int(c);
    ++c;
    g.peak_device_bytes = q.is_null(c) ? -1 : q.column_int(c);
    ++c;
    g.latency_samples = q.column_int(c++);
    g.latency_p50_ms = q.column_optional_double(c++);
    g.latency_p95_ms = q.column_optional_double(c++);
    g.latency_p99_ms = q.column_optional_double(c++);
    g.latency_mean_ms = q.column_optional_double(c++);
    g.background_cpu_share = q.column_optional_double(c++);
    g.latency_reference_p50_ms = q.column_optional_double(c++);
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<StoredRun> ResultStore::runs() {
  SqliteStatement q(*db_, "SELECT id, started_at, finished_at, status, error, command, harness_version, git_revision, "
                          "build_type, host, os, cpu_model, cpu_threads, threads, gpu, libtorch_version, blas "
                          "FROM runs ORDER BY id");
  std::vector<StoredRun> out;
  while (q.step()) {
    StoredRun r;
    int c = 0;
    r.id = q.column_int(c++);
    r.started_at = q.column_text(c++);
    r.finished_at = q.column_text(c++);
    r.status = q.column_text(c++);
    r.error = q.column_text(c++);
    r.run.command = q.column_text(c++);
    r.run.harness_version = q.column_text(c++);
    r.run.git_revision = q.column_text(c++);
    r.run.build_type = q.column_text(c++);
    r.run.host = q.column_text(c++);
    r.run.os = q.column_text(c++);
    r.run.cpu_model = q.column_text(c++);
    r.run.cpu_threads = q.column_int(c++);
    r.run.threads = q.column_int(c++);
    r.run.gpu = q.column_text(c++);
    r.run.libtorch_version = q.column_text(c++);
    r.run.blas = q.column_text(c++);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace embeval
