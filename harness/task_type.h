#pragma once
// A task type (STS, Retrieval, ...) is one plugin file in tasks/ that
// registers itself with EMBEVAL_REGISTER_TASK_TYPE. The harness run loop owns
// task discovery, timing and recording; a plugin loads its split, encodes
// through the EvalContext and returns every metric MTEB reports.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "datasets/task_spec.h"
#include "harness/encoder.h"
#include "harness/fidelity.h"
#include "harness/progress_line.h"

namespace embeval {

// Counters for the encoding a task did (the rest of its time is scoring).
struct EncodeStats {
  double seconds = 0;
  int64_t calls = 0;
  int64_t items = 0;    // texts sent to the encoder (after de-duplication)
  int64_t tokens = -1;  // -1 when the backend does not count tokens
};

// What a plugin may use while evaluating one task.
class EmbeddingCache;

class EvalContext {
 public:
  EvalContext(Encoder& encoder, const data::TaskSpec& task);

  // Encodes texts (each distinct text once) and checks the result: shape,
  // finiteness. `what` names the texts in errors, e.g. "corpus" or "sentence1".
  Matrix encode(const std::vector<std::string>& texts, Role role, const char* what);

  // Prompt the task gives for a role (task.json query_prompt / passage_prompt;
  // the symmetric types' texts, ROLE_NONE, take passage_prompt).
  const std::string& prompt_for(Role role) const;
  // What encode() passes the encoder for a role: the role, the task's
  // prompt, its name and type (for models' task-keyed prompts).
  EncodeOptions options_for(Role role) const;
  Similarity similarity() const { return encoder_.info().similarity; }
  const EncodeStats& stats() const { return stats_; }
  // Whether the task encoded any text in this role (only those prompts are recorded).
  bool encoded(Role role) const { return encoded_[role]; }
  const data::TaskSpec& task() const { return task_; }

  // Texts for single-text latency: up to n distinct texts the task encoded,
  // spread evenly over them in encoding order (deterministic): queries when
  // the task has any, else passages, else texts of no prompt type; with the
  // role they were encoded with.
  std::vector<std::string> latency_sample(size_t n, Role* role) const;

  // Progress of each encode() call on a terminal (harness/progress_line.h),
  // labelled "<label> <what>"; off (nullptr) by default.
  void show_progress(ProgressLine* line, const std::string& label) {
    progress_ = line;
    progress_label_ = label;
  }

  // Read vectors from, and add new ones to, an embedding cache
  // (harness/embedding_cache.h); none by default. Cached texts are not
  // encoded, so they are not in the encoding statistics either.
  void use_cache(EmbeddingCache* cache) { cache_ = cache; }

  // Keep a copy of every set of vectors encode() produces (fidelity to fp32:
  // harness/fidelity.h); off by default.
  void keep_encoded_sets(bool keep) { keep_sets_ = keep; }
  std::vector<EncodedSet>& encoded_sets() { return sets_; }

 private:
  Encoder& encoder_;
  const data::TaskSpec& task_;
  EncodeStats stats_;
  std::vector<std::string> seen_[3];  // distinct texts, per encode call, by Role
  bool encoded_[3] = {false, false, false};
  bool keep_sets_ = false;
  ProgressLine* progress_ = nullptr;
  EmbeddingCache* cache_ = nullptr;
  std::string progress_label_;
  std::vector<EncodedSet> sets_;
};

class TaskType {
 public:
  virtual ~TaskType() = default;
  virtual std::string name() const = 0;  // the task.json "type" it handles
  // Version of the type's scoring code: bump it in the plugin whenever a
  // metric's code changes, so that `embeval run` re-evaluates results that
  // older code computed instead of reusing them.
  virtual int scoring_version() const { return 1; }
  // Scalar metrics evaluate() returns; task.json main_score must be one of them.
  virtual std::vector<std::string> metric_names() const = 0;
  // Loads the evaluation split, encodes and scores it. Returns an ordered JSON
  // object in MTEB's layout: scalar metrics (null where MTEB leaves a value
  // undefined) plus the nested lists MTEB keeps (scores_per_experiment, v_measures).
  virtual nlohmann::ordered_json evaluate(const data::TaskSpec& task, EvalContext& ctx) const = 0;
  // Loads and validates the split without encoding; returns its size for
  // listings, e.g. "200 pairs" or "50 queries, 1000 documents".
  virtual std::string describe(const data::TaskSpec& task) const = 0;
};

// Registers a task type; a second registration of the same name aborts and
// names both files (it is a build error, not a user error).
bool register_task_type(std::unique_ptr<TaskType> type, const char* file);
// Looks a type up by name; an unknown name throws UserError listing the known ones.
const TaskType& find_task_type(const std::string& name);
std::vector<std::string> task_type_names();

}  // namespace embeval

#define EMBEVAL_TASK_TYPE_CONCAT2(a, b) a##b
#define EMBEVAL_TASK_TYPE_CONCAT(a, b) EMBEVAL_TASK_TYPE_CONCAT2(a, b)
#define EMBEVAL_REGISTER_TASK_TYPE(cls)                                                            \
  static const bool EMBEVAL_TASK_TYPE_CONCAT(embeval_registered_, __LINE__) =                      \
      ::embeval::register_task_type(std::make_unique<cls>(), __FILE__)
