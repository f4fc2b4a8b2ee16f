#pragma once
// The leaderboard every printer shares: one row per model (spec, fingerprint,
// device), one column per task, main scores, and what the MTEB leaderboard
// shows (Borda rank, mean over tasks, mean over task-type means, one mean per
// type), plus performance, a quantization view and the score-vs-throughput
// Pareto front. A model missing a task gets a blank there, and every average
// that would need the missing task is blank too, never a partial mean.
// Printers only format: every number they show is computed here.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "harness/result_store.h"
#include "harness/system_info.h"

namespace embeval::reports {

// Optional scalar a quantized run may record in its scores JSON: the mean
// cosine similarity between this model's embedding of each text of the task
// and its fp32 base model's embedding of the same text. It is not an MTEB
// metric (MTEB result files omit every "embeval_" key); the quantization view
// shows it where recorded.
constexpr const char* FIDELITY_METRIC = "embeval_cosine_to_fp32";
constexpr const char* FIDELITY_MIN_METRIC = "embeval_min_cosine_to_fp32";

struct TaskColumn {
  std::string key;    // unique: task name, plus checksum prefix if the data differs
  std::string name;   // task name
  std::string type;
  std::string main_score;
};

struct TypeColumn {
  std::string type;
  int n_tasks = 0;
};

struct LeaderboardRow {
  StoredModel model;
  std::map<std::string, size_t> results;  // task key -> index into Leaderboard::results
  std::map<std::string, std::optional<double>> type_mean;  // type -> mean of its tasks
  std::optional<double> mean_task, mean_type;
  int n_tasks = 0;
  // MTEB's Borda count: per task, n_rows - rank (rank "average" over the rows
  // that have the task, best = 1); a missing task adds 0. rank is the "min"
  // rank of the counts, best = 1.
  double borda = 0;
  int rank = 0;
  // Throughput over all tasks of the row: encoded items (tokens) / encode seconds.
  std::optional<double> items_per_second, tokens_per_second;
  // Single-text (batch size 1) latency of the task with the most samples;
  // percentiles of different tasks cannot be merged.
  std::optional<double> latency_p50_ms, latency_p95_ms;
  int64_t latency_samples = 0;
  // Median over the row's tasks of its p50 over the fp32 model's, both
  // measured in turn on the same texts (timings.latency_reference_p50_ms:
  // `embeval run --quant fp32,...`); unset where none was.
  std::optional<double> latency_vs_reference;
  int64_t peak_rss_bytes = -1, peak_device_bytes = -1;  // max over tasks; -1 unknown
  std::vector<int64_t> threads;  // distinct encoder threads of the runs behind the row
  // The largest share of its CPUs other processes kept busy during any of
  // the row's tasks (timings.background_cpu_share); unknown before schema v2.
  std::optional<double> background_cpu_share;
  bool timed_on_busy_machine() const { return background_cpu_share.value_or(0) >= BUSY_CPU_SHARE; }
  std::vector<int64_t> run_ids;  // runs behind the row, ascending
  // Mean of FIDELITY_METRIC over the tasks that recorded it (n_fidelity).
  std::optional<double> fidelity;
  int n_fidelity = 0;
  // Smallest FIDELITY_MIN_METRIC over those tasks: the worst single embedding.
  std::optional<double> fidelity_min;
};

// One spec of a base model in the quantization view, against the fp32,
// unquantized run of the same model (same device preferred).
struct QuantVariant {
  size_t row = 0;                    // index into Leaderboard::rows
  std::optional<size_t> reference;   // the fp32 row compared with; none recorded: blank deltas
  std::map<std::string, std::optional<double>> type_delta;  // type -> type mean - reference's
  std::optional<double> mean_task_delta, mean_type_delta;
  std::optional<double> speedup;       // items/s over the reference's
  std::optional<double> memory_ratio;  // peak memory over the reference's (device bytes if both have them)
  std::optional<double> latency_ratio; // single-text p50 over fp32's, measured in turn (row.latency_vs_reference)
};

// A base model (name, revision) with at least one quantized or non-fp32 spec.
struct QuantGroup {
  std::string name, revision;
  std::vector<QuantVariant> variants;  // fp32 rows first, then by spec
};

// A row on the score-vs-throughput chart: complete Mean (Task) and measured texts/s.
struct ScorePoint {
  size_t row = 0;
  double items_per_second = 0, score = 0;
  bool pareto = false;  // no other row is at least as fast and as good, and better in one
};

struct Leaderboard {
  std::vector<TypeColumn> types;    // C-MTEB order, then any other type alphabetically
  std::vector<TaskColumn> tasks;    // grouped by type (in `types` order), then by name
  std::vector<LeaderboardRow> rows; // by Borda rank, then Mean (Task)
  std::vector<StoredResult> results;  // every result, rows index into it
  std::vector<StoredRun> runs;        // the runs behind `results`, ascending id
  std::vector<QuantGroup> quant_groups;
  std::vector<ScorePoint> points;     // ascending texts/s
  // Things a reader must know before trusting the table (unfinished runs,
  // incomplete models); every printer shows them first.
  std::vector<std::string> notices;

  const StoredResult* result(const LeaderboardRow& row, const TaskColumn& task) const;
  std::optional<double> main_score(const LeaderboardRow& row, const TaskColumn& task) const;
  bool has_fidelity() const;
  // Whether any quantized variant has a single-text time measured in turn with fp32's.
  bool has_paired_latency() const;
};

// Type order of the C-MTEB leaderboard.
const std::vector<std::string>& cmteb_type_order();
// `runs` may hold every run of the database; only those behind a result are kept.
Leaderboard build_leaderboard(std::vector<StoredResult> results, const std::vector<StoredRun>& runs = {});

// MTEB leaderboard's _borda_count summed over tasks: scores[row][task], a
// missing value counts 0 for that row.
std::vector<double> borda_counts(const std::vector<std::vector<std::optional<double>>>& scores);
// pandas rank(method="min", ascending=False): 1 + number of strictly larger values.
std::vector<int> min_rank_descending(const std::vector<double>& values);
// Rows not dominated when both score and speed are maximised; exact
// duplicates of a front point are on the front too (as in MTEB's _pareto.py).
std::vector<bool> pareto_front(const std::vector<double>& score, const std::vector<double>& speed);

// "fp32", "fp16", or the quantization spec ("bf16+" before it when it ran in bf16).
std::string variant_label(const EncoderInfo& info);
// How a task relates to C-MTEB, for the Datasets tables: "the C-MTEB split",
// "subset of <name>", or "no" (a substitute holding no C-MTEB task's data).
std::string mteb_relation(const TaskRecord& t);
// Name plus whatever tells it apart from the plain fp32 CPU model.
std::string model_label(const EncoderInfo& info);
// Peak memory of a row: device memory when measured, else RSS; -1 unknown.
int64_t row_peak_memory(const LeaderboardRow& row);

}  // namespace embeval::reports
