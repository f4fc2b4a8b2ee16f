#pragma once
// A task is a folder: task.json (metadata) plus MTEB-style JSONL files.
// TaskSpec is the validated content of task.json; adding a dataset needs no code.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "datasets/scoring_protocol.h"

namespace embeval::data {

struct TaskSpec {
  std::filesystem::path dir;  // the task folder
  std::string name;           // e.g. "LCQMC-mini"
  std::string type;           // plugin name: STS, Retrieval, ...
  std::string language;       // ISO 639 code as written in task.json ("zh")
  std::string main_score;     // metric reported as the headline
  std::string eval_split = "test";
  int version = 1;  // bump when data or scoring changes; results are keyed on it

  // Type-specific knobs (task.json fields of the same name).
  int samples_per_label = 8;  // Classification
  int n_experiments = 10;     // Classification
  int batch_size = 500;       // Clustering: mini-batch k-means batch size
  // Classification and Clustering: which scikit-learn release's numerics the
  // scores reproduce (task.json "protocol", canonical name; datasets/scoring_protocol.h).
  ScoringProtocol protocol = DEFAULT_SCORING_PROTOCOL;
  bool ignore_identical_ids = false;  // Retrieval
  std::string query_prompt;           // instruction for models that take one
  std::string passage_prompt;
  std::vector<std::string> label_names;  // Classification, optional

  // Provenance, shown in reports.
  std::string source_repo, source_commit, license;
  // The C-MTEB task this one is the split of, or a subset of (task.json
  // "mteb_name"): equal to `name` only for a folder that holds the C-MTEB
  // split itself, whose scores are comparable with the published
  // leaderboard; a subset is named for what it is (e.g. TNews-sub2k with
  // mteb_name TNews). Models' task-keyed prompts are looked up by it. Empty
  // for tasks that are no C-MTEB task's data.
  std::string mteb_name;
  nlohmann::json raw;  // the whole task.json, unknown fields included
};

// Reads and validates <dir>/task.json. Errors name the file and the field.
TaskSpec read_task_spec(const std::filesystem::path& dir);

// The data files a task of this type reads for its evaluation (and training)
// split, in a fixed order. Unknown types return an empty list.
std::vector<std::filesystem::path> task_data_files(const TaskSpec& spec);

// SHA-256 (hex) over task.json and the data files: results are keyed on it,
// so any change to the data invalidates earlier scores.
std::string dataset_checksum(const TaskSpec& spec);

}  // namespace embeval::data
