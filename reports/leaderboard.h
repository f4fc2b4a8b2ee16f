#pragma once
// The leaderboard every printer shares: one row per model (spec, fingerprint,
// device), one column per task, main scores, and the averages the MTEB
// leaderboard shows (mean over tasks, mean over task-type means, one mean
// per type). A model missing a task gets a blank there, and every average
// that would need the missing task is blank too, never a partial mean.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "harness/result_store.h"

namespace embeval::reports {

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
  // Throughput over all tasks of the row: encoded items / encode seconds.
  std::optional<double> items_per_second, tokens_per_second;
  int64_t peak_rss_bytes = -1;
};

struct Leaderboard {
  std::vector<TypeColumn> types;    // C-MTEB order, then any other type alphabetically
  std::vector<TaskColumn> tasks;    // grouped by type (in `types` order), then by name
  std::vector<LeaderboardRow> rows; // best Mean (Task) first; incomplete rows last
  std::vector<StoredResult> results;  // every result, rows index into it

  const StoredResult* result(const LeaderboardRow& row, const TaskColumn& task) const;
  std::optional<double> main_score(const LeaderboardRow& row, const TaskColumn& task) const;
};

// Type order of the C-MTEB leaderboard.
const std::vector<std::string>& cmteb_type_order();
Leaderboard build_leaderboard(std::vector<StoredResult> results);

}  // namespace embeval::reports
