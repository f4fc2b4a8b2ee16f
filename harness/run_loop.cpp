#include "harness/run_loop.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "datasets/data_error.h"
#include "datasets/task_spec.h"
#include "harness/embedding_cache.h"
#include "harness/error.h"
#include "harness/interrupt.h"
#include "harness/system_info.h"
#include "harness/task_type.h"
#include "harness/timing.h"

namespace embeval {
namespace fs = std::filesystem;

namespace {

// Times encoding one text at a time, as a deployment serving single
// requests sees it: a few warm-up calls first, then one timed call per text.
// With a reference encoder, in blocks of LATENCY_BLOCK texts: the encoder's
// block and the reference's on the same texts in turn (the first of the two
// alternating from block to block), each after two untimed calls that bring
// its weights back into the caches the other one used.
constexpr size_t LATENCY_BLOCK = 25;

void measure_latency(Encoder& encoder, Encoder* reference, const EvalContext& ctx, int samples,
                     TimingRecord* timing) {
  Role role;
  std::vector<std::string> texts = ctx.latency_sample(static_cast<size_t>(samples), &role);
  if (texts.empty()) return;
  const EncodeOptions options = ctx.options_for(role);
  auto time_texts = [&](Encoder& e, size_t begin, size_t end, std::vector<double>* ms) {
    for (size_t i = begin; i < end; ++i) {
      Stopwatch clock;
      e.encode({texts[i]}, options);
      ms->push_back(clock.seconds() * 1000.0);
    }
  };
  std::vector<double> ms, ref_ms;
  if (!reference) {
    for (size_t i = 0; i < std::min<size_t>(3, texts.size()); ++i) encoder.encode({texts[i]}, options);
    time_texts(encoder, 0, texts.size(), &ms);
  } else {
    for (size_t b0 = 0, block = 0; b0 < texts.size(); b0 += LATENCY_BLOCK, ++block) {
      const size_t b1 = std::min(texts.size(), b0 + LATENCY_BLOCK);
      for (int turn = 0; turn < 2; ++turn) {
        const bool ours = (turn == 0) == (block % 2 == 0);
        Encoder& e = ours ? encoder : *reference;
        for (size_t i = 0; i < std::min<size_t>(2, b1 - b0); ++i) e.encode({texts[b0 + i]}, options);
        time_texts(e, b0, b1, ours ? &ms : &ref_ms);
      }
    }
    timing->latency_reference_p50_ms = percentile(ref_ms, 50);
  }
  double sum = 0;
  for (double v : ms) sum += v;
  timing->latency_samples = static_cast<int64_t>(ms.size());
  timing->latency_p50_ms = percentile(ms, 50);
  timing->latency_p95_ms = percentile(ms, 95);
  timing->latency_p99_ms = percentile(ms, 99);
  timing->latency_mean_ms = sum / static_cast<double>(ms.size());
}

struct PlannedTask {
  data::TaskSpec spec;
  const TaskType* type = nullptr;
};

// Everything that can be checked without encoding is checked before the
// first task runs, so a typo in the last task.json does not waste a run.
std::vector<PlannedTask> plan(const std::vector<fs::path>& task_dirs,
                              std::optional<data::ScoringProtocol> protocol) {
  std::vector<PlannedTask> tasks;
  for (const auto& dir : task_dirs) {
    PlannedTask t;
    t.spec = data::read_task_spec(dir);
    if (protocol && data::scoring_protocol_applies(t.spec.type)) t.spec.protocol = *protocol;
    fs::path json = dir / "task.json";
    try {
      t.type = &find_task_type(t.spec.type);
    } catch (const UserError& e) {
      throw UserError(fmt::format("{}: {}", json.string(), e.what()));
    }
    auto names = t.type->metric_names();
    if (std::find(names.begin(), names.end(), t.spec.main_score) == names.end())
      fail("{}: main_score \"{}\" is not a metric of task type {}; expected one of: {}", json.string(),
           t.spec.main_score, t.spec.type, fmt::join(names, ", "));
    for (const auto& f : data::task_data_files(t.spec)) {
      std::error_code ec;
      if (!fs::is_regular_file(f, ec)) fail("{}: file not found (needed by task {})", f.string(), t.spec.name);
    }
    tasks.push_back(std::move(t));
  }
  return tasks;
}

TaskRecord task_record(const data::TaskSpec& spec, const std::string& checksum) {
  TaskRecord r;
  r.name = spec.name;
  r.type = spec.type;
  r.split = spec.eval_split;
  r.language = spec.language;
  r.main_score = spec.main_score;
  r.version = spec.version;
  r.dataset_checksum = checksum;
  r.dataset_revision = spec.source_commit;
  r.source_repo = spec.source_repo;
  r.license = spec.license;
  r.path = spec.dir.string();
  r.mteb_name = spec.mteb_name;
  return r;
}

std::optional<double> main_score_of(const nlohmann::ordered_json& scores, const std::string& name) {
  auto it = scores.find(name);
  if (it == scores.end() || !it->is_number()) return std::nullopt;
  double v = it->get<double>();
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

// Marks a run that stops on an exception and drops its claims; a store that
// fails here too (disk full) must not hide the error that stopped the run.
void stop_run(ResultStore& store, int64_t run_id, const std::string& status, const std::string& error) {
  try {
    store.release_claims(run_id);
    store.end_run(run_id, status, error);
  } catch (const std::exception&) {
  }
}

}  // namespace

size_t RunSummary::failed() const {
  return static_cast<size_t>(
      std::count_if(tasks.begin(), tasks.end(), [](const TaskOutcome& t) { return !t.error.empty(); }));
}

RunSummary run_tasks(Encoder& encoder, const std::vector<fs::path>& task_dirs, ResultStore& store,
                     const RunRecord& run, const RunOptions& options) {
  auto log = [&](const std::string& line) {
    if (options.log) options.log(line);
  };
  std::vector<PlannedTask> tasks = plan(task_dirs, options.protocol);

  RunSummary summary;
  std::unique_ptr<EmbeddingCache> cache;
  if (!options.cache_dir.empty()) cache = std::make_unique<EmbeddingCache>(options.cache_dir);
  const int64_t model_id = store.upsert_model(encoder.info());
  summary.run_id = store.begin_run(run);
  try {
    for (size_t i = 0; i < tasks.size(); ++i) {
      const data::TaskSpec& spec = tasks[i].spec;
      TaskOutcome outcome;
      outcome.name = spec.name;
      outcome.type = spec.type;
      outcome.main_score_name = spec.main_score;
      const std::string checksum = data::dataset_checksum(spec);
      const int64_t task_id = store.upsert_task(task_record(spec, checksum));
      check_interrupt();
      const std::string where = fmt::format("[{}/{}] {} ({})", i + 1, tasks.size(), spec.name, spec.type);
      // Reuse only a result of the same scoring code, prompts and protocol.
      ScoringKey key;
      key.scoring_version = tasks[i].type->scoring_version();
      if (data::scoring_protocol_applies(spec.type)) key.protocol = data::scoring_protocol_name(spec.protocol);
      {
        EvalContext probe(encoder, spec);
        std::vector<std::pair<std::string, std::string>> by_role;
        for (Role role : {ROLE_QUERY, ROLE_PASSAGE, ROLE_NONE})
          by_role.emplace_back(role_name(role), encoder.prompt_used(probe.options_for(role)));
        key.prompt_key = ResultStore::prompt_key(by_role);
      }
      // Claimed in one transaction with the check that it is not recorded:
      // several processes on one database never evaluate a task together.
      std::string holder, stale_why;
      const ResultStore::Claim claim =
          store.claim_task(summary.run_id, model_id, task_id, key, options.force, &holder, &stale_why);
      if (claim != ResultStore::Claim::claimed) {
        outcome.skipped = true;
        log(where + (claim == ResultStore::Claim::recorded ? ": already recorded, skipped (--force reruns)"
                                                           : ": being evaluated by " + holder + ", skipped"));
        summary.tasks.push_back(outcome);
        continue;
      }
      if (!stale_why.empty()) log(where + ": " + stale_why + ", so evaluated again");
      try {
        const CpuSample cpu_before = cpu_sample();
        reset_peak_rss();
        encoder.reset_peak_device_bytes();
        Stopwatch clock;
        EvalContext ctx(encoder, spec);
        ProgressLine progress(stderr);
        if (options.progress) ctx.show_progress(&progress, where);
        if (cache) ctx.use_cache(cache.get());
        ctx.keep_encoded_sets(options.fidelity != RunOptions::Fidelity::none);
        nlohmann::ordered_json scores = tasks[i].type->evaluate(spec, ctx);
        scores["main_score"] = scores.contains(spec.main_score) ? scores[spec.main_score] : nlohmann::ordered_json();

        ResultRecord rec;
        rec.run_id = summary.run_id;
        rec.model_id = model_id;
        rec.task_id = task_id;
        rec.main_score = main_score_of(scores, spec.main_score);
        rec.scores = scores;
        rec.prompts = nlohmann::json::object();
        rec.key = key;
        for (Role role : {ROLE_QUERY, ROLE_PASSAGE, ROLE_NONE}) {
          if (!ctx.encoded(role)) continue;  // an STS task has no queries: no query prompt was used
          std::string used = encoder.prompt_used(ctx.options_for(role));
          if (!used.empty()) rec.prompts[role_name(role)] = used;
        }
        rec.evaluation_seconds = clock.seconds();
        const EncodeStats& st = ctx.stats();
        rec.timing.encode_seconds = st.seconds;
        rec.timing.encoded_items = st.items;
        rec.timing.encoded_tokens = st.tokens;
        rec.timing.evaluate_seconds = std::max(0.0, rec.evaluation_seconds - st.seconds);
        rec.timing.peak_rss_bytes = peak_rss_bytes();
        rec.timing.peak_device_bytes = encoder.peak_device_bytes();
        if (options.latency_samples > 0)
          measure_latency(encoder, options.latency_reference, ctx, options.latency_samples, &rec.timing);
        rec.timing.background_cpu_share = background_cpu_share(cpu_before, cpu_sample());
        // After the timings: neither the file nor the comparison is in them.
        const fs::path vectors = options.fidelity_dir / (spec.name + ".vectors");
        if (options.fidelity == RunOptions::Fidelity::save_reference) {
          save_encoded_sets(vectors, ctx.encoded_sets());
        } else if (options.fidelity == RunOptions::Fidelity::compare) {
          std::optional<Fidelity> f;
          if (fs::exists(vectors)) f = compare_encoded_sets(load_encoded_sets(vectors), ctx.encoded_sets());
          if (f) {
            rec.scores["embeval_cosine_to_fp32"] = f->mean_cosine;
            rec.scores["embeval_min_cosine_to_fp32"] = f->min_cosine;
          } else {
            log(where + ": no fp32 vectors of this task to compare with (its fp32 run was already recorded; --force "
                        "re-encodes it), so no fidelity is recorded");
          }
        }
        ctx.encoded_sets().clear();
        bool written = store.record_result(rec, options.force);

        outcome.main_score = rec.main_score;
        outcome.seconds = rec.evaluation_seconds;
        const std::string busy =
            rec.timing.background_cpu_share.value_or(0) >= BUSY_CPU_SHARE
                ? fmt::format("; other processes kept {:.0f}% of its CPUs busy, so its timings are not an idle machine's",
                              100 * *rec.timing.background_cpu_share)
                : "";
        log(fmt::format("{}: {} = {} ({:.1f} s{}){}", where, spec.main_score,
                        rec.main_score ? fmt::format("{:.5f}", *rec.main_score) : "n/a", rec.evaluation_seconds, busy,
                        written ? "" : " — another run recorded it first; kept theirs"));
      } catch (const std::exception& e) {
        // One bad task (bad data, non-finite vectors) does not sink the run:
        // recorded with its error, the others go on; the caller reports the
        // failures at the end. Anything else is a bug or the machine's
        // failure (e.g. the disk) and ends the run.
        const bool task_error = dynamic_cast<const UserError*>(&e) || dynamic_cast<const data::DataError*>(&e);
        if (options.fail_fast || !task_error) throw;
        outcome.error = e.what();
        store.record_failure(summary.run_id, model_id, task_id, outcome.error);
        log(fmt::format("{}: failed: {}", where, outcome.error));
      }
      summary.tasks.push_back(outcome);
    }
  } catch (const Interrupted& e) {
    stop_run(store, summary.run_id, "interrupted", e.what());
    throw;
  } catch (const std::exception& e) {
    stop_run(store, summary.run_id, "failed", e.what());
    throw;
  }
  if (const size_t failed = summary.failed(); failed > 0) {
    std::vector<std::string> names;
    for (const TaskOutcome& t : summary.tasks)
      if (!t.error.empty()) names.push_back(t.name);
    store.end_run(summary.run_id, "failed",
                  fmt::format("{} of {} task(s) failed: {}", failed, tasks.size(), fmt::join(names, ", ")));
  } else {
    store.end_run(summary.run_id, "finished");
  }
  return summary;
}

}  // namespace embeval
