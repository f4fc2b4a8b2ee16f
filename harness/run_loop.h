#pragma once
// The run loop: validate every task up front, then evaluate them one by one
// and record each finished task in its own transaction. A task that fails
// while it runs (bad data, non-finite vectors: a UserError) is recorded as
// failed with its one-line error and the others go on, unless fail_fast.
// Each task is claimed before it is evaluated (ResultStore::claim_task), so
// several processes on one database never evaluate it together; SIGINT /
// SIGTERM (harness/interrupt.h) abandon the current task and mark the run
// interrupted. A task already
// recorded for the same model (spec, fingerprint, device) and the same
// dataset (name, split, version, checksum) is skipped unless forced, so
// rerunning a crashed command resumes where it stopped.
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "datasets/scoring_protocol.h"
#include "harness/encoder.h"
#include "harness/result_store.h"

namespace embeval {

struct RunOptions {
  bool force = false;                            // re-evaluate recorded tasks
  bool fail_fast = false;                        // a failing task ends the run (rethrown)
  // Single-text (batch size 1) latency over this many of each task's texts
  // (queries when it has any), after a warm-up; 0 skips the measurement.
  int latency_samples = 200;
  // The fp32 model of the same checkpoint (kept alive by the caller), or
  // null. Set: each task's latency is measured in blocks of texts, this
  // encoder's and the reference's in turn (warm caches each, the order
  // alternating), and the reference's p50 recorded beside the encoder's
  // (TimingRecord::latency_reference_p50_ms): runs of the variants minutes
  // apart drift by more than a short text's forward costs.
  Encoder* latency_reference = nullptr;
  std::function<void(const std::string&)> log;  // progress lines; may be empty
  // Texts encoded, rate and ETA inside each task, redrawn on one stderr line
  // (for a terminal: the caller checks that).
  bool progress = false;
  // Scoring protocol of every task it applies to (--protocol), instead of
  // each task.json's; none: the task.json's (datasets/scoring_protocol.h).
  std::optional<data::ScoringProtocol> protocol;
  // Embedding cache folder (--cache DIR); empty: none.
  std::filesystem::path cache_dir;
  // Fidelity to fp32 (harness/fidelity.h): the fp32 run saves each task's
  // vectors as <fidelity_dir>/<task>.vectors; a quantized variant's run
  // compares with them and records embeval_cosine_to_fp32 (mean) and
  // embeval_min_cosine_to_fp32. A task whose fp32 run was skipped (already
  // recorded) has no vectors to compare with: the variant records none.
  enum class Fidelity { none, save_reference, compare } fidelity = Fidelity::none;
  std::filesystem::path fidelity_dir;
};

struct TaskOutcome {
  std::string name, type, main_score_name;
  std::optional<double> main_score;
  bool skipped = false;  // already recorded
  double seconds = 0;
  std::string error;     // the one-line error of a failed task; empty when it did not fail
};

struct RunSummary {
  int64_t run_id = 0;
  std::vector<TaskOutcome> tasks;
  size_t failed() const;
};

RunSummary run_tasks(Encoder& encoder, const std::vector<std::filesystem::path>& task_dirs, ResultStore& store,
                     const RunRecord& run, const RunOptions& options);

}  // namespace embeval
