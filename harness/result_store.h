#pragma once
// The results database: one SQLite file holding runs (environment), models,
// tasks (keyed on dataset checksum), results with every metric, and timings.
// Schema versioned with PRAGMA user_version and migrated forward; WAL mode
// and one transaction per finished task, so a run killed at any moment
// leaves a consistent file and concurrent runs can share it.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/encoder.h"
#include "harness/sqlite_db.h"

namespace embeval {

// Where and how a run happened, so a number can be reproduced.
struct RunRecord {
  std::string command;
  std::string harness_version, git_revision, build_type;
  std::string host, os, cpu_model, gpu, libtorch_version, blas;
  int64_t cpu_threads = 0;  // hardware threads of the machine
  int64_t threads = 0;      // threads the encoder used
};

struct TaskRecord {
  std::string name, type, split, language, main_score;
  int version = 1;
  std::string dataset_checksum;
  std::string dataset_revision;  // source commit when known
  std::string source_repo, license, path;
  std::string mteb_name;  // TaskSpec::mteb_name; "" when none (or recorded before schema v3)
  // Whether scores on it compare with the published C-MTEB leaderboard: the
  // folder holds the C-MTEB split itself.
  bool is_mteb_split() const { return !mteb_name.empty() && mteb_name == name; }
};

struct TimingRecord {
  double encode_seconds = 0;
  int64_t encoded_items = 0;
  int64_t encoded_tokens = -1;  // -1: the backend does not count tokens
  double evaluate_seconds = 0;  // scoring time, encoding excluded
  int64_t peak_rss_bytes = -1;
  int64_t peak_device_bytes = -1;
  int64_t latency_samples = 0;  // single-text latency; zero when not measured
  std::optional<double> latency_p50_ms, latency_p95_ms, latency_p99_ms, latency_mean_ms;
  // The fp32 model's p50 over the same texts, measured in turn with this
  // one (blocks of texts alternating, RunOptions::latency_reference): a
  // ratio to it is free of the drift between runs minutes apart. Unset
  // where no reference ran beside it.
  std::optional<double> latency_reference_p50_ms;
  // The share (0-1) of the process's CPUs other processes kept busy while
  // the task ran (its encoding, scoring and latency sampling); unknown off Linux.
  std::optional<double> background_cpu_share;
};

// What a result's scores depend on besides model and dataset; a result is
// reused only when all of it matches: the task type's scoring version
// (bumped whenever its metric code changes), the prompts the encoder gives
// the task's text sets (ResultStore::prompt_key), and the scoring protocol
// (datasets/scoring_protocol.h; "" for types it does not apply to).
struct ScoringKey {
  int scoring_version = 0;
  std::string prompt_key;
  std::string protocol;
};

struct ResultRecord {
  int64_t run_id = 0, model_id = 0, task_id = 0;
  std::optional<double> main_score;
  nlohmann::ordered_json scores;  // every metric, MTEB layout
  nlohmann::json prompts;         // prompts used, by role
  ScoringKey key;
  double evaluation_seconds = 0;  // wall time of the whole task
  TimingRecord timing;
};

struct StoredModel {
  int64_t id = 0;
  EncoderInfo info;
};

struct StoredTask {
  int64_t id = 0;
  TaskRecord task;
};

struct StoredRun {
  int64_t id = 0;
  std::string started_at, finished_at, status, error;
  RunRecord run;
};

struct StoredResult {
  int64_t id = 0, run_id = 0;
  StoredModel model;
  StoredTask task;
  std::optional<double> main_score;
  nlohmann::ordered_json scores;
  nlohmann::json prompts;
  std::string protocol;  // scoring protocol ("" where none applies)
  double evaluation_seconds = 0;
  std::string created_at;
  TimingRecord timing;
};

class ResultStore {
 public:
  static constexpr int SCHEMA_VERSION = 5;

  // Opens or creates the file and migrates it to SCHEMA_VERSION. A file that
  // is not SQLite, belongs to another program, or has a newer schema throws
  // UserError and is left untouched.
  explicit ResultStore(const std::filesystem::path& file);
  // Opens an existing file read-mostly (reports); it must exist.
  static std::unique_ptr<ResultStore> open_existing(const std::filesystem::path& file);

  int64_t begin_run(const RunRecord& run);
  void end_run(int64_t run_id, const std::string& status, const std::string& error = "");
  int64_t upsert_model(const EncoderInfo& info);
  int64_t upsert_task(const TaskRecord& task);
  // Whether (model, task) has a result computed under this key: `current`;
  // `stale` when it has results but none such (`why` says what differs in
  // the newest one); else `none`.
  enum class Recorded { none, current, stale };
  Recorded recorded(int64_t model_id, int64_t task_id, const ScoringKey& key, std::string* why = nullptr);
  // A digest-free, readable key of the prompts by role ("query=...\n...").
  static std::string prompt_key(const std::vector<std::pair<std::string, std::string>>& prompts_by_role);
  // Records one finished task in one transaction. Without `replace`, a
  // current result (same ScoringKey) that appeared meanwhile
  // (another process) wins and nothing is written: returns false. With `replace` the new row is added and becomes the latest.
  bool record_result(const ResultRecord& result, bool replace);

  // Claims (model, task) for a run so that no other process evaluates it at
  // the same time, in one transaction with the check that it is not already
  // recorded (unless force): `recorded`, `held` (by a live process of another
  // run; `holder` says which) or `claimed`. A claim of a process that is gone
  // (killed: same host, pid and start time no longer running) is taken over.
  // record_result / record_failure of the same run end the claim.
  enum class Claim { claimed, recorded, held };
  // When it claims a task that has only stale results, `stale_why` (if
  // given) says what differs, as recorded() does; it is left alone otherwise.
  Claim claim_task(int64_t run_id, int64_t model_id, int64_t task_id, const ScoringKey& key, bool force,
                   std::string* holder, std::string* stale_why = nullptr);
  // Drops the claims a run still holds (it stopped: failed or interrupted).
  void release_claims(int64_t run_id);
  // A task that failed in a run, with its one-line error (its own transaction).
  void record_failure(int64_t run_id, int64_t model_id, int64_t task_id, const std::string& error);

  // The newest result of every (model, task) pair, by model then task name.
  std::vector<StoredResult> latest_results();
  std::vector<StoredRun> runs();
  int schema_version();
  const std::filesystem::path& path() const { return db_->path(); }

 private:
  ResultStore(const std::filesystem::path& file, bool create);
  void migrate();
  std::unique_ptr<SqliteDb> db_;
};

}  // namespace embeval
