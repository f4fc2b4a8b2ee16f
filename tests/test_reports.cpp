// Leaderboard arithmetic (Borda rank, means, performance, quantization
// deltas, Pareto front) against values computed by hand, golden Markdown /
// CSV / MTEB JSON for the fixed database of tests/report_fixture.h, the HTML
// page's escaping and bad-input pages, and render time at 50 models x 30 tasks.
//
// Golden files live in tests/data/reports/; EMBEVAL_UPDATE_GOLDEN=1 rewrites
// them (review the diff: the hand-checked tests below guard the numbers).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "harness/error.h"
#include "harness/result_store.h"
#include "harness/sqlite_db.h"
#include "reports/csv_report.h"
#include "reports/html_report.h"
#include "reports/leaderboard.h"
#include "reports/markdown_report.h"
#include "reports/mteb_json_report.h"
#include "reports/score_format.h"
#include "tests/report_fixture.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace embeval;
using namespace embeval::reports;

namespace {

// The notices about runs and missing results, without the two that say what
// the reader looks at (baselines; tasks not comparable with C-MTEB), which
// their own test checks.
std::vector<std::string> run_notices(const embeval::reports::Leaderboard& lb) {
  std::vector<std::string> out;
  for (const auto& n : lb.notices)
    if (n.find("lexical baseline without weights") == std::string::npos &&
        n.rfind("Not comparable with the published C-MTEB leaderboard", 0) != 0)
      out.push_back(n);
  return out;
}

// Two models, three tasks (two STS, one Clustering); model "b" lacks one STS task.
std::vector<StoredResult> small_results(const fs::path& db) {
  ResultStore s(db);
  int64_t run = s.begin_run(RunRecord{});
  auto model = [&](const std::string& name) {
    EncoderInfo m;
    m.spec = "baseline:" + name;
    m.name = name;
    m.fingerprint = "f" + name;
    m.dim = 4;
    return s.upsert_model(m);
  };
  auto task = [&](const std::string& name, const std::string& type, const std::string& main) {
    TaskRecord t;
    t.name = name;
    t.type = type;
    t.split = "test";
    t.language = "zh";
    t.main_score = main;
    t.dataset_checksum = "sum" + name;
    t.dataset_revision = "rev" + name;
    return s.upsert_task(t);
  };
  auto record = [&](int64_t m, int64_t t, const std::string& metric, double v) {
    ResultRecord r;
    r.run_id = run;
    r.model_id = m;
    r.task_id = t;
    r.main_score = v;
    r.scores = {{metric, v}, {"main_score", v}};
    r.evaluation_seconds = 1.5;
    r.timing.encode_seconds = 1.0;
    r.timing.encoded_items = 100;
    s.record_result(r, false);
  };
  int64_t a = model("a"), b = model("b");
  int64_t t1 = task("S1", "STS", "cosine_spearman"), t2 = task("S2", "STS", "cosine_spearman"),
          t3 = task("C1", "Clustering", "v_measure");
  record(a, t1, "cosine_spearman", 0.50);
  record(a, t2, "cosine_spearman", 0.70);
  record(a, t3, "v_measure", 0.30);
  record(b, t1, "cosine_spearman", 0.90);
  record(b, t3, "v_measure", 0.40);
  s.end_run(run, "finished");
  return s.latest_results();
}

Leaderboard fixture_board(const std::string& name) {
  fs::path db = test::scratch_dir(name) / "fixture.sqlite";
  test::report_fixture(db);
  auto store = ResultStore::open_existing(db);
  return build_leaderboard(store->latest_results(), store->runs());
}

// const char*: a std::string parameter would be a temporary the returned row seems to dangle from (GCC 14).
const LeaderboardRow& row_named(const Leaderboard& lb, const char* spec) {
  for (const auto& r : lb.rows)
    if (r.model.info.spec == spec) return r;
  throw std::runtime_error(std::string("no row ") + spec);
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool update_golden() {
  const char* v = std::getenv("EMBEVAL_UPDATE_GOLDEN");
  return v && std::string(v) == "1";
}

// Compares `actual` with the golden file; on a mismatch names the first
// differing line, expected vs actual.
void expect_golden(const fs::path& golden, const std::string& actual) {
  if (update_golden()) {
    test::write_file(golden, actual);
    return;
  }
  ASSERT_TRUE(fs::exists(golden)) << golden << " missing; run with EMBEVAL_UPDATE_GOLDEN=1 to create it";
  std::string expected = read_text(golden);
  if (expected == actual) return;
  std::istringstream e(expected), a(actual);
  std::string le, la;
  for (int line = 1;; ++line) {
    bool ge = static_cast<bool>(std::getline(e, le)), ga = static_cast<bool>(std::getline(a, la));
    if (!ge && !ga) break;
    if (le != la || ge != ga) {
      ADD_FAILURE() << golden.string() << ":" << line << ": differs\n  expected: " << (ge ? le : "<end>")
                    << "\n  actual:   " << (ga ? la : "<end>");
      return;
    }
  }
  ADD_FAILURE() << golden.string() << ": differs (line endings)";
}

}  // namespace

TEST(Borda, HandComputedWithTiesAndMissingTask) {
  // The fixture's main scores; D lacks the last task. Per task, rank
  // "average" descending among present values, count = n - rank with n = 5:
  //   LCQMC: A,D tie 1.5 -> 3.5 each; B 3 -> 2; E 4 -> 1; C 5 -> 0
  //   BQ:    B 4, A 3, E 2, C 1, D 0
  //   CMRC:  D 4, A 3, B 2, C 1, E 0
  //   CLS:   A,B tie 1.5 -> 3.5 each; E 2; C 1; D missing -> 0
  // Totals: A 13, B 11.5, C 3, D 7.5, E 5 (scipy.stats.rankdata agrees).
  std::vector<std::vector<std::optional<double>>> s = {{.80, .70, .60, .40},
                                                       {.79, .71, .58, .40},
                                                       {.50, .40, .55, .30},
                                                       {.80, .20, .90, std::nullopt},
                                                       {.60, .50, .50, .35}};
  std::vector<double> counts = borda_counts(s);
  ASSERT_EQ(counts.size(), 5u);
  EXPECT_DOUBLE_EQ(counts[0], 13.0);
  EXPECT_DOUBLE_EQ(counts[1], 11.5);
  EXPECT_DOUBLE_EQ(counts[2], 3.0);
  EXPECT_DOUBLE_EQ(counts[3], 7.5);
  EXPECT_DOUBLE_EQ(counts[4], 5.0);
  EXPECT_EQ(min_rank_descending(counts), (std::vector<int>{1, 2, 5, 3, 4}));
}

TEST(Borda, MinRankTiesEmptyAndOneRow) {
  // pandas rank(method="min", ascending=False) of [3, 5, 5, 1] is [3, 1, 1, 4].
  EXPECT_EQ(min_rank_descending({3, 5, 5, 1}), (std::vector<int>{3, 1, 1, 4}));
  EXPECT_TRUE(borda_counts({}).empty());
  EXPECT_TRUE(min_rank_descending({}).empty());
  // One model: rank 1 of 1 on each task, n - 1 = 0 points.
  EXPECT_EQ(borda_counts({{.5, .7}}), (std::vector<double>{0.0}));
  // A model without any score is dropped from MTEB's table, so n = 1 here.
  EXPECT_EQ(borda_counts({{.5}, {std::nullopt}}), (std::vector<double>{0.0, 0.0}));
  // All tied on one task, three models: rank 2 each, 3 - 2 = 1 point each.
  EXPECT_EQ(borda_counts({{.5}, {.5}, {.5}}), (std::vector<double>{1.0, 1.0, 1.0}));
}

TEST(Leaderboard, MeansByHandAndBlanksForMissingTasks) {
  Leaderboard lb = build_leaderboard(small_results(test::scratch_dir("reports/lb") / "r.sqlite"));
  ASSERT_EQ(lb.types.size(), 2u);
  EXPECT_EQ(lb.types[0].type, "STS");  // C-MTEB order: STS before Clustering
  EXPECT_EQ(lb.types[0].n_tasks, 2);
  EXPECT_EQ(lb.types[1].type, "Clustering");
  ASSERT_EQ(lb.rows.size(), 2u);
  // Borda, n = 2: S1 b 1 point, S2 only a (rank 1) 1 point, C1 b 1 point: b 2, a 1.
  const LeaderboardRow& b = lb.rows[0];
  const LeaderboardRow& a = lb.rows[1];
  EXPECT_EQ(b.model.info.name, "b");
  EXPECT_EQ(b.rank, 1);
  EXPECT_DOUBLE_EQ(b.borda, 2.0);
  EXPECT_EQ(a.rank, 2);
  EXPECT_DOUBLE_EQ(a.borda, 1.0);
  // Mean (Task) = (0.5 + 0.7 + 0.3) / 3; STS mean = 0.6; Mean (TaskType) = (0.6 + 0.3) / 2.
  EXPECT_NEAR(*a.mean_task, 0.5, 1e-12);
  EXPECT_NEAR(*a.type_mean.at("STS"), 0.6, 1e-12);
  EXPECT_NEAR(*a.mean_type, 0.45, 1e-12);
  EXPECT_NEAR(*a.items_per_second, 100.0, 1e-9);  // 300 items / 3 s
  EXPECT_FALSE(b.mean_task.has_value());  // missing S2: no partial mean
  EXPECT_FALSE(b.type_mean.at("STS").has_value());
  EXPECT_NEAR(*b.type_mean.at("Clustering"), 0.4, 1e-12);
  EXPECT_FALSE(b.mean_type.has_value());
  const auto notices = run_notices(lb);
  ASSERT_EQ(notices.size(), 1u);  // the incomplete model; the run finished
  EXPECT_NE(notices[0].find("1 of 2 models lack results"), std::string::npos) << notices[0];
}

TEST(Leaderboard, FixtureRanksMeansAndPerformance) {
  Leaderboard lb = fixture_board("reports/fixture_lb");
  ASSERT_EQ(lb.rows.size(), 5u);
  ASSERT_EQ(lb.tasks.size(), 4u);
  // Types in C-MTEB order: Retrieval, STS, Clustering.
  ASSERT_EQ(lb.types.size(), 3u);
  EXPECT_EQ(lb.types[0].type, "Retrieval");
  EXPECT_EQ(lb.types[1].type, "STS");
  EXPECT_EQ(lb.types[2].type, "Clustering");
  // Borda order A (13), B (11.5), D (7.5), E (5), C (3); see Borda.HandComputed...
  std::vector<std::string> order;
  for (const auto& r : lb.rows) order.push_back(r.model.info.spec);
  EXPECT_EQ(order, (std::vector<std::string>{"bert:bge-small-zh-v1.5", "bert:bge-small-zh-v1.5,sq-w8a8",
                                             "precomputed:<script>alert(1)</script>.jsonl",
                                             "bert:text2vec-base-chinese", "baseline:char-ngram"}));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(lb.rows[i].rank, i + 1);
  const LeaderboardRow& a = lb.rows[0];
  // A: (.8 + .7 + .6 + .4) / 4 = .625; STS .75, Retrieval .6, Clustering .4; by type (.6 + .75 + .4) / 3.
  EXPECT_NEAR(*a.mean_task, 0.625, 1e-12);
  EXPECT_NEAR(*a.type_mean.at("STS"), 0.75, 1e-12);
  EXPECT_NEAR(*a.mean_type, 1.75 / 3, 1e-12);
  // E: (.6 + .5 + .5 + .35) / 4 = .4875; by type (.5 + .55 + .35) / 3.
  const LeaderboardRow& e = row_named(lb, "bert:text2vec-base-chinese");
  EXPECT_NEAR(*e.mean_task, 0.4875, 1e-12);
  EXPECT_NEAR(*e.mean_type, 1.4 / 3, 1e-12);
  // D lacks Clustering: Mean (Task), Mean (TaskType) and its Clustering mean are blank, STS is not.
  const LeaderboardRow& d = lb.rows[2];
  EXPECT_FALSE(d.mean_task);
  EXPECT_FALSE(d.mean_type);
  EXPECT_FALSE(d.type_mean.at("Clustering"));
  EXPECT_NEAR(*d.type_mean.at("STS"), 0.5, 1e-12);
  EXPECT_EQ(d.n_tasks, 3);

  // Performance: A encodes 4 x 200 texts in 4 x 2 s = 100 texts/s, 4 x 6000 tokens -> 3000 tokens/s.
  EXPECT_NEAR(*a.items_per_second, 100.0, 1e-9);
  EXPECT_NEAR(*a.tokens_per_second, 3000.0, 1e-9);
  EXPECT_EQ(a.latency_samples, 100);
  EXPECT_DOUBLE_EQ(*a.latency_p50_ms, 5.0);
  EXPECT_DOUBLE_EQ(*a.latency_p95_ms, 9.0);
  EXPECT_EQ(a.peak_rss_bytes, 500ll * 1024 * 1024);
  EXPECT_EQ(row_peak_memory(a), 500ll * 1024 * 1024);
  EXPECT_EQ(a.threads, (std::vector<int64_t>{4}));
  EXPECT_EQ(d.threads, (std::vector<int64_t>{2}));  // D ran in run 2, 2 threads
  EXPECT_EQ(d.run_ids, (std::vector<int64_t>{2}));
  const LeaderboardRow& c = row_named(lb, "baseline:char-ngram");
  EXPECT_NEAR(*c.items_per_second, 2000.0, 1e-9);
  EXPECT_FALSE(c.tokens_per_second);  // the baseline does not count tokens
  EXPECT_FALSE(c.latency_p50_ms);

  // Notices: the failed run and the incomplete model.
  const auto notices = run_notices(lb);
  ASSERT_EQ(notices.size(), 2u);
  EXPECT_NE(notices[0].find("Run 2 (started 2025-01-02T10:00:00.000Z) failed: CLSClusteringS2S-mini: out of "
                               "memory. The 3 task(s)"),
            std::string::npos)
      << notices[0];
  EXPECT_NE(notices[1].find("1 of 5 models lack results for some of the 4 tasks"), std::string::npos);
  EXPECT_EQ(lb.runs.size(), 2u);
}

// Timings taken while other processes kept CPUs busy (timings.background_cpu_share,
// recorded by the run loop) are marked in both reports with the busiest share;
// rows below BUSY_CPU_SHARE, and rows without the column, are not.
TEST(Leaderboard, TimingsFromABusyMachineAreMarked) {
  fs::path db = test::scratch_dir("reports/busy") / "fixture.sqlite";
  test::report_fixture(db);
  {
    SqliteDb raw(db, false);
    // E (text2vec): one task at 67% of its CPUs, the rest quiet; A (bge-small fp32): 15% everywhere.
    raw.exec("UPDATE timings SET background_cpu_share = 0.1 WHERE result_id IN (SELECT r.id FROM results r JOIN models m "
             "ON m.id = r.model_id WHERE m.spec = 'bert:text2vec-base-chinese')");
    raw.exec("UPDATE timings SET background_cpu_share = 0.67 WHERE result_id = (SELECT MIN(r.id) FROM results r JOIN "
             "models m ON m.id = r.model_id WHERE m.spec = 'bert:text2vec-base-chinese')");
    raw.exec("UPDATE timings SET background_cpu_share = 0.15 WHERE result_id IN (SELECT r.id FROM results r JOIN models m "
             "ON m.id = r.model_id WHERE m.spec = 'bert:bge-small-zh-v1.5')");
  }
  auto store = ResultStore::open_existing(db);
  Leaderboard lb = build_leaderboard(store->latest_results(), store->runs());
  const LeaderboardRow& e = row_named(lb, "bert:text2vec-base-chinese");
  const LeaderboardRow& a = row_named(lb, "bert:bge-small-zh-v1.5");
  EXPECT_DOUBLE_EQ(e.background_cpu_share.value_or(-1), 0.67);  // the busiest of its tasks
  EXPECT_TRUE(e.timed_on_busy_machine());
  EXPECT_DOUBLE_EQ(a.background_cpu_share.value_or(-1), 0.15);
  EXPECT_FALSE(a.timed_on_busy_machine());
  EXPECT_FALSE(row_named(lb, "baseline:char-ngram").background_cpu_share);  // never measured

  const std::string md = markdown_report(lb, "t");
  // E: 4 x 200 texts in 4 x 4 s = 50 texts/s, marked; A's 100 texts/s is not.
  EXPECT_NE(md.find("| 50.0 \\* |"), std::string::npos) << md;
  EXPECT_EQ(md.find("| 100 \\* |"), std::string::npos);
  EXPECT_NE(md.find("\\* Timed while other processes kept up to 67% of the CPUs busy"), std::string::npos);
  const std::string html = html_report(lb, HtmlOptions{});
  EXPECT_NE(html.find("* Timed while other processes kept up to 67% of the CPUs busy"), std::string::npos);

  // The fixture as recorded (no loads): no marks, no note.
  Leaderboard quiet = fixture_board("reports/quiet");
  EXPECT_EQ(markdown_report(quiet, "t").find("Timed while other processes"), std::string::npos);
  EXPECT_EQ(html_report(quiet, HtmlOptions{}).find("Timed while other processes"), std::string::npos);
}

TEST(Leaderboard, RunStillRunningOrKilledIsCalledOut) {
  fs::path db = test::scratch_dir("reports/partial") / "r.sqlite";
  {
    ResultStore s(db);
    int64_t run = s.begin_run(RunRecord{});  // never ended: killed, or still running
    EncoderInfo m = test::fixture_model("baseline:x", "x", 4);
    TaskRecord t;
    t.name = "S1";
    t.type = "STS";
    t.split = "test";
    t.main_score = "cosine_spearman";
    t.dataset_checksum = "c";
    ResultRecord r;
    r.run_id = run;
    r.model_id = s.upsert_model(m);
    r.task_id = s.upsert_task(t);
    r.main_score = 0.5;
    r.scores = {{"cosine_spearman", 0.5}, {"main_score", 0.5}};
    s.record_result(r, false);
  }
  auto store = ResultStore::open_existing(db);
  Leaderboard lb = build_leaderboard(store->latest_results(), store->runs());
  const auto notices = run_notices(lb);
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_NE(notices[0].find("Run 1 (started "), std::string::npos);
  EXPECT_NE(notices[0].find(") has not finished: it is still running or was killed. The 1 task(s) it recorded so "
                               "far are shown."),
            std::string::npos)
      << notices[0];
  EXPECT_NE(markdown_report(lb, "t").find("> **Note:** Run 1 (started "), std::string::npos);
  EXPECT_NE(html_report(lb, {}).find("<p class=\"notice\">Run 1 (started "), std::string::npos);
}

TEST(Leaderboard, QuantizationViewAgainstFp32) {
  Leaderboard lb = fixture_board("reports/fixture_quant");
  ASSERT_EQ(lb.quant_groups.size(), 1u);  // only bge has a quantized spec
  const QuantGroup& g = lb.quant_groups[0];
  EXPECT_EQ(g.name, "BAAI/bge-small-zh-v1.5");
  ASSERT_EQ(g.variants.size(), 2u);
  const QuantVariant& ref = g.variants[0];
  const QuantVariant& q = g.variants[1];
  EXPECT_EQ(lb.rows[ref.row].model.info.quantization, "");
  EXPECT_EQ(*ref.reference, ref.row);
  EXPECT_NEAR(*ref.speedup, 1.0, 1e-12);
  EXPECT_EQ(lb.rows[q.row].model.info.quantization, "sq-w8a8");
  EXPECT_EQ(*q.reference, ref.row);
  // B - A: STS (.79 + .71) / 2 - .75 = 0; Retrieval .58 - .60; Clustering 0;
  // Mean (Task) .62 - .625; Mean (TaskType) (1.73 - 1.75) / 3.
  EXPECT_NEAR(*q.type_delta.at("STS"), 0.0, 1e-12);
  EXPECT_NEAR(*q.type_delta.at("Retrieval"), -0.02, 1e-12);
  EXPECT_NEAR(*q.type_delta.at("Clustering"), 0.0, 1e-12);
  EXPECT_NEAR(*q.mean_task_delta, -0.005, 1e-12);
  EXPECT_NEAR(*q.mean_type_delta, -0.02 / 3, 1e-12);
  EXPECT_NEAR(*q.speedup, 2.0, 1e-12);        // 200 vs 100 texts/s
  EXPECT_NEAR(*q.memory_ratio, 0.6, 1e-12);   // 300 vs 500 MiB peak RSS
  // Fidelity: mean of .995, .993, .990, .992 = .9925; A recorded none.
  const LeaderboardRow& b = lb.rows[q.row];
  EXPECT_NEAR(*b.fidelity, 0.9925, 1e-12);
  EXPECT_EQ(b.n_fidelity, 4);
  // The least single-embedding cosine over the tasks: min(.995 - .01, .993 - .02, .990 - .03, .992 - .04) = .952.
  EXPECT_NEAR(*b.fidelity_min, 0.952, 1e-12);
  EXPECT_FALSE(lb.rows[ref.row].fidelity);
  EXPECT_TRUE(lb.has_fidelity());
}

// A variant's single-text time against fp32's measured in turn with it
// (timings.latency_reference_p50_ms): the median over its tasks of the
// per-task ratios, shown in the quantization view only when some variant has
// one (the fixture has none: its golden report has no such column).
TEST(Leaderboard, PairedLatencyRatioIsTheMedianOverTasks) {
  fs::path db = test::scratch_dir("reports/paired_latency") / "fixture.sqlite";
  test::report_fixture(db);
  auto store = ResultStore::open_existing(db);
  std::vector<StoredResult> results = store->latest_results();
  EXPECT_FALSE(build_leaderboard(results, store->runs()).has_paired_latency());
  // The sq-w8a8 spec's tasks: ratios 0.5, 0.9, 0.6, and one task timed alone.
  const double p50[] = {1.0, 1.8, 0.3, 0.7}, ref[] = {2.0, 2.0, 0.5, -1};
  size_t n = 0;
  for (StoredResult& r : results)
    if (r.model.info.quantization == "sq-w8a8") {
      ASSERT_LT(n, 4u);
      r.timing.latency_samples = 50;
      r.timing.latency_p50_ms = p50[n];
      if (ref[n] > 0) r.timing.latency_reference_p50_ms = ref[n];
      ++n;
    }
  ASSERT_EQ(n, 4u);
  Leaderboard lb = build_leaderboard(results, store->runs());
  ASSERT_EQ(lb.quant_groups.size(), 1u);
  const QuantVariant& ref_v = lb.quant_groups[0].variants[0];
  const QuantVariant& q = lb.quant_groups[0].variants[1];
  EXPECT_FALSE(ref_v.latency_ratio);  // the reference row itself: blank
  ASSERT_TRUE(q.latency_ratio);
  EXPECT_NEAR(*q.latency_ratio, 0.6, 1e-12);
  EXPECT_TRUE(lb.has_paired_latency());
  const std::string md = markdown_report(lb, "t");
  EXPECT_NE(md.find("| Speed-up | Batch-1 time | Memory |"), std::string::npos);
  EXPECT_NE(md.find("| 2.00x | 0.60x | 0.60x |"), std::string::npos) << md;  // speed-up, batch-1 time, memory
  const std::string html = html_report(lb, HtmlOptions{});
  EXPECT_NE(html.find("Batch-1 time"), std::string::npos);
}

TEST(Leaderboard, ScoreThroughputParetoFront) {
  Leaderboard lb = fixture_board("reports/fixture_pareto");
  // Complete rows only (D lacks a task), ascending texts/s: E 50, A 100, B 200, C 2000.
  // E is slower and worse than A: dominated; A, B, C each trade speed for score.
  ASSERT_EQ(lb.points.size(), 4u);
  std::vector<std::string> specs;
  std::vector<bool> front;
  for (const auto& p : lb.points) {
    specs.push_back(lb.rows[p.row].model.info.spec);
    front.push_back(p.pareto);
  }
  EXPECT_EQ(specs, (std::vector<std::string>{"bert:text2vec-base-chinese", "bert:bge-small-zh-v1.5",
                                             "bert:bge-small-zh-v1.5,sq-w8a8", "baseline:char-ngram"}));
  EXPECT_EQ(front, (std::vector<bool>{false, true, true, true}));
}

TEST(Leaderboard, ParetoFrontDuplicatesAndTies) {
  // (score, speed): (1, 1) twice -> both on the front (exact duplicates, as MTEB);
  // (0.5, 2) fastest -> front; (0.9, 1) same speed, worse -> dominated;
  // (0.5, 0.5) dominated by everything.
  EXPECT_EQ(pareto_front({1, 1, 0.5, 0.9, 0.5}, {1, 1, 2, 1, 0.5}),
            (std::vector<bool>{true, true, true, false, false}));
  EXPECT_TRUE(pareto_front({}, {}).empty());
  EXPECT_EQ(pareto_front({0.3}, {10}), (std::vector<bool>{true}));
}

TEST(ScoreFormat, HundredthsAndBlank) {
  EXPECT_EQ(format_score(0.40996), "41.00");
  EXPECT_EQ(format_score(0.123449), "12.34");
  EXPECT_EQ(format_score(std::nullopt), "");
  EXPECT_EQ(format_delta(-0.0123), "-1.23");
  EXPECT_EQ(format_delta(0.005), "+0.50");
  EXPECT_EQ(format_delta(-0.00001), "0.00");
  EXPECT_EQ(format_ratio(1.8512), "1.85x");
  EXPECT_EQ(format_mb(500ll * 1024 * 1024), "500");
  EXPECT_EQ(format_mb(-1), "");
  EXPECT_EQ(format_params(24000000), "24M");
  EXPECT_EQ(format_params(1500000000), "1.5B");
  EXPECT_EQ(format_params(3300000), "3.3M");
  EXPECT_EQ(format_params(0), "");
}

TEST(MarkdownReport, TablesWithBlanksAndEscaping) {
  Leaderboard lb = build_leaderboard(small_results(test::scratch_dir("reports/md") / "r.sqlite"));
  std::string md = markdown_report(lb, "Test | board");
  EXPECT_NE(md.find("# Test \\| board"), std::string::npos);
  EXPECT_NE(md.find("| Rank | Model | Spec | Params | Dim | Max tokens | Tasks | Mean (Task) | Mean (TaskType) | "
                    "STS (2) | Clustering (1) |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| 2 | a | `baseline:a` |  | 4 |  | 3/3 | 50.00 | 45.00 | 60.00 | 30.00 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 1 | b | `baseline:b` |  | 4 |  | 2/3 |  |  |  | 40.00 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| b | 90.00 |  |"), std::string::npos) << md;  // STS section: S2 blank
  EXPECT_EQ(markdown_cell("<script>a|b</script>"), "&lt;script&gt;a\\|b&lt;/script&gt;");
  EXPECT_NE(markdown_report(build_leaderboard({}), "t").find("No results recorded yet"), std::string::npos);
}

TEST(ReportGolden, MarkdownCsvAndMtebJson) {
  fs::path dir = test::scratch_dir("reports/golden");
  test::report_fixture(dir / "fixture.sqlite");
  auto store = ResultStore::open_existing(dir / "fixture.sqlite");
  auto results = store->latest_results();
  Leaderboard lb = build_leaderboard(results, store->runs());
  const fs::path golden = test::data_path("reports");
  expect_golden(golden / "fixture.md", markdown_report(lb, "Fixture leaderboard"));
  expect_golden(golden / "fixture.csv", csv_report(lb));

  auto files = write_mteb_results(results, dir / "mteb");
  EXPECT_EQ(files.size(), 24u);  // 19 task results + 5 model_meta.json
  std::vector<fs::path> expected;
  if (!update_golden())
    for (const auto& f : fs::recursive_directory_iterator(golden / "mteb"))
      if (f.is_regular_file()) expected.push_back(fs::relative(f.path(), golden / "mteb"));
  for (const auto& f : files) {
    fs::path rel = fs::relative(f, dir / "mteb");
    expect_golden(golden / "mteb" / rel, read_text(f));
    expected.erase(std::remove(expected.begin(), expected.end(), rel), expected.end());
  }
  EXPECT_TRUE(expected.empty()) << "golden MTEB files not written any more, e.g. " << expected.front();
}

TEST(CsvReport, Rfc4180QuotingAndRowPerMetric) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_field("cr\r"), "\"cr\r\"");
  EXPECT_EQ(csv_field(""), "");

  std::string csv = csv_report(fixture_board("reports/csv"));
  // Scalar metrics without "main_score": STS 3, Retrieval 4, Clustering 2
  // (the v_measures list is not a scalar). A, C, E: 3+3+4+2 = 12 rows; B 12 +
  // 4 + 4 fidelity rows (mean, min); D 3+3+4 = 10. 66 rows and the header, each ending CRLF.
  size_t lines = 0;
  for (size_t p = 0; (p = csv.find("\r\n", p)) != std::string::npos; p += 2) ++lines;
  EXPECT_EQ(lines, 67u);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 67);  // no bare LF
  EXPECT_EQ(csv.substr(0, csv.find("\r\n")),
            "model,spec,device,dtype,quantization,fingerprint,task,type,split,dataset_checksum,mteb_name,protocol,metric,"
            "value,is_main");
  EXPECT_NE(csv.find("\r\nBAAI/bge-small-zh-v1.5,bert:bge-small-zh-v1.5,cpu,fp32,,fp-bert:bge-small-zh-v1.5,"
                     "CMRC2018Retrieval-mini,Retrieval,dev,"),
            std::string::npos);
  EXPECT_NE(csv.find(",ndcg_at_10,0.6,1\r\n"), std::string::npos);
  EXPECT_NE(csv.find(",embeval_cosine_to_fp32,0.995,0\r\n"), std::string::npos);
}

TEST(MtebJson, RoundsLikeMtebAndWritesModelMeta) {
  // Python: round(0.0078125, 6) == 0.007812 (exact half, to even);
  // round(0.7876543211, 6) == 0.787654; round(1/3, 6) == 0.333333;
  // round(0.12345650000000001, 6) == 0.123457 (just above the half).
  EXPECT_EQ(mteb_round(0.0078125), 0.007812);
  EXPECT_EQ(mteb_round(0.7876543211), 0.787654);
  EXPECT_EQ(mteb_round(1.0 / 3.0), 0.333333);
  EXPECT_EQ(mteb_round(0.12345650000000001), 0.123457);
  EXPECT_EQ(mteb_round(-0.0000004), -0.0);

  Leaderboard lb = fixture_board("reports/mteb_meta");
  const LeaderboardRow& b = row_named(lb, "bert:bge-small-zh-v1.5,sq-w8a8");
  const StoredResult& r = lb.results[b.results.at("CLSClusteringS2S-mini")];
  nlohmann::ordered_json j = mteb_task_result(r);
  const auto& split = j["scores"]["test"][0];
  EXPECT_FALSE(split.contains("embeval_cosine_to_fp32"));  // not an MTEB metric
  EXPECT_EQ(split["v_measure_std"].get<double>(), 0.007812);
  EXPECT_EQ(split["v_measures"][0].get<double>(), 0.392188);  // .4 - 1/128 = .3921875 -> even
  EXPECT_EQ(split["main_score"].get<double>(), 0.4);

  nlohmann::ordered_json meta = mteb_model_meta(b.model.info);
  std::vector<std::string> keys;
  for (const auto& [k, v] : meta.items()) keys.push_back(k);
  // mteb ModelMeta.to_dict(): the fields in declaration order, "loader" moved last.
  EXPECT_EQ(keys, (std::vector<std::string>{"name", "revision", "release_date", "languages", "loader_kwargs",
                                            "n_parameters", "memory_usage_mb", "max_tokens", "embed_dim", "license",
                                            "open_weights", "public_training_code", "public_training_data",
                                            "framework", "reference", "similarity_fn_name", "use_instructions",
                                            "training_datasets", "adapted_from", "superseded_by", "modalities",
                                            "citation", "loader"}));
  EXPECT_EQ(meta["name"], "BAAI/bge-small-zh-v1.5__sq-w8a8");
  EXPECT_EQ(meta["adapted_from"], "BAAI/bge-small-zh-v1.5");
  EXPECT_TRUE(meta["memory_usage_mb"].is_null());  // fp32 formula does not hold for a quantized model
  EXPECT_EQ(meta["loader_kwargs"]["embeval_spec"], "bert:bge-small-zh-v1.5,sq-w8a8");
  nlohmann::ordered_json base = mteb_model_meta(row_named(lb, "bert:bge-small-zh-v1.5").model.info);
  EXPECT_EQ(base["name"], "BAAI/bge-small-zh-v1.5");
  EXPECT_TRUE(base["adapted_from"].is_null());
  // calculate_memory_usage_mb: round(24e6 * 4 / 2^20) = round(91.55) = 92.
  EXPECT_EQ(base["memory_usage_mb"].get<double>(), 92.0);
  EXPECT_EQ(base["max_tokens"].get<double>(), 512.0);
  EXPECT_EQ(base["similarity_fn_name"], "cosine");
  EXPECT_EQ(base["revision"], "7999e1d3359715c523056ef9478215996d62a620");

  EncoderInfo q;
  q.name = "BAAI/bge-small-zh-v1.5";
  q.quantization = "awq-int4-g128";
  q.device = "cuda:0";
  EXPECT_EQ(mteb_model_folder(q), "BAAI__bge-small-zh-v1.5__awq-int4-g128__cuda_0");
  q.quantization.clear();
  q.device = "cpu";
  EXPECT_EQ(mteb_model_folder(q), "BAAI__bge-small-zh-v1.5");
}

TEST(MtebJson, FileLayoutAndFields) {
  fs::path dir = test::scratch_dir("reports/mteb");
  auto results = small_results(dir / "r.sqlite");
  auto files = write_mteb_results(results, dir / "out");
  EXPECT_EQ(files.size(), 7u);  // 5 task files + 2 model_meta.json
  nlohmann::json j = test::read_json(dir / "out" / "a" / "no_revision_available" / "S1.json");
  EXPECT_EQ(j["task_name"], "S1");
  EXPECT_EQ(j["dataset_revision"], "revS1");
  EXPECT_EQ(j["mteb_version"], MTEB_FORMAT_VERSION);
  EXPECT_TRUE(j["kg_co2_emissions"].is_null());
  EXPECT_DOUBLE_EQ(j["evaluation_time"].get<double>(), 1.5);
  const auto& split = j["scores"]["test"][0];
  EXPECT_DOUBLE_EQ(split["cosine_spearman"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(split["main_score"].get<double>(), 0.5);
  EXPECT_EQ(split["hf_subset"], "default");
  EXPECT_EQ(split["languages"], nlohmann::json::array({"cmn-Hans"}));
  nlohmann::json meta = test::read_json(dir / "out" / "a" / "no_revision_available" / "model_meta.json");
  EXPECT_EQ(meta["name"], "a");
  EXPECT_EQ(meta["embed_dim"], 4);
}

TEST(HtmlReport, EscapesEveryDataTextAndHasEverySection) {
  Leaderboard lb = fixture_board("reports/html");
  HtmlOptions o;
  o.title = "Fixture <leaderboard>";
  o.source = "results & more.sqlite";
  std::string h = html_report(lb, o);
  // The model named <script>alert(1)</script> appears only escaped; the one
  // real <script> element is the page's own.
  EXPECT_EQ(h.find("<script>alert"), std::string::npos);
  EXPECT_NE(h.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  size_t scripts = 0;
  for (size_t p = 0; (p = h.find("<script", p)) != std::string::npos; ++p) ++scripts;
  EXPECT_EQ(scripts, 1u);
  EXPECT_NE(h.find("<title>Fixture &lt;leaderboard&gt;</title>"), std::string::npos);
  EXPECT_NE(h.find("results &amp; more.sqlite"), std::string::npos);
  // No network: nothing is fetched from anywhere.
  EXPECT_EQ(h.find("http://"), h.find("http://www.w3.org/2000/svg"));  // the SVG namespace is a name, not a fetch
  EXPECT_EQ(h.find("src="), std::string::npos);
  EXPECT_EQ(h.find("<link"), std::string::npos);
  for (const char* id : {"id=\"summary\"", "id=\"performance\"", "id=\"quantization\"", "id=\"chart\"",
                         "id=\"type-Retrieval\"", "id=\"type-STS\"", "id=\"type-Clustering\"", "id=\"details\"",
                         "id=\"runs\"", "id=\"t-datasets\"", "id=\"t-prompts\"", "id=\"score-speed\""})
    EXPECT_NE(h.find(id), std::string::npos) << id;
  // Both notices, a row per model in the summary, the fidelity column, the prompt.
  EXPECT_NE(h.find("Run 2 (started 2025-01-02T10:00:00.000Z) failed"), std::string::npos);
  EXPECT_NE(h.find("1 of 5 models lack results"), std::string::npos);
  size_t summary = h.find("id=\"t-summary\""), end = h.find("</table>", summary);
  size_t rows = 0;
  for (size_t p = summary; (p = h.find("<tr data-model", p)) < end; ++p) ++rows;
  EXPECT_EQ(rows, 5u);
  EXPECT_NE(h.find(">Fidelity</th>"), std::string::npos);
  EXPECT_NE(h.find("Represent this sentence for searching relevant passages: "), std::string::npos);
  // Every metric of the task detail view, e.g. the retrieval ones.
  for (const char* m : {">ndcg_at_1</th>", ">map_at_10</th>", ">recall_at_100</th>", ">v_measure_std</th>"})
    EXPECT_NE(h.find(m), std::string::npos) << m;
  EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

TEST(HtmlReport, EmptyDatabaseSaysWhatToDo) {
  HtmlOptions o;
  o.source = "empty.sqlite";
  std::string h = html_report(build_leaderboard({}), o);
  EXPECT_NE(h.find("No results recorded in <code>empty.sqlite</code> yet"), std::string::npos) << h;
  EXPECT_NE(h.find("embeval run --suite cmteb-mini"), std::string::npos);
  EXPECT_NE(h.find("</html>"), std::string::npos);
}

TEST(ReportInput, NewerSchemaIsRefusedWithAClearMessage) {
  fs::path db = test::scratch_dir("reports/newer") / "newer.sqlite";
  test::report_fixture(db);
  {
    SqliteDb raw(db, false);
    raw.exec("PRAGMA user_version = 42");
  }
  try {
    ResultStore::open_existing(db);
    FAIL() << "a newer schema was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 42 is newer than this embeval supports"), std::string::npos)
        << e.what();
  }
}

TEST(ReportPerformance, FiftyModelsThirtyTasksRenderInUnderASecond) {
  fs::path dir = test::scratch_dir("reports/perf");
  test::synthetic_db(dir / "big.sqlite", 50, 30);
  using clock = std::chrono::steady_clock;
  auto ms = [](clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  auto t0 = clock::now();
  auto store = ResultStore::open_existing(dir / "big.sqlite");
  std::vector<StoredResult> results = store->latest_results();
  std::vector<StoredRun> runs = store->runs();
  auto t1 = clock::now();
  Leaderboard lb = build_leaderboard(results, runs);
  auto t2 = clock::now();
  std::string md = markdown_report(lb, "big");
  auto t3 = clock::now();
  std::string html = html_report(lb, HtmlOptions{});
  auto t4 = clock::now();
  std::string csv = csv_report(lb);
  auto t5 = clock::now();
  auto files = write_mteb_results(results, dir / "mteb");
  auto t6 = clock::now();
  ASSERT_EQ(results.size(), 1500u);
  ASSERT_EQ(lb.rows.size(), 50u);
  EXPECT_EQ(files.size(), 1550u);
  EXPECT_EQ(lb.quant_groups.size(), 25u);  // every other model is a sq-w8a8 spec of the one before
  double total = ms(t0, t6);
  std::printf("[ report render, 50 models x 30 tasks ] load %.1f ms, leaderboard %.1f ms, md %.1f ms (%zu KB), "
              "html %.1f ms (%zu KB), csv %.1f ms (%zu KB), mteb json %.1f ms (%zu files); total %.1f ms\n",
              ms(t0, t1), ms(t1, t2), ms(t2, t3), md.size() / 1024, ms(t3, t4), html.size() / 1024, ms(t4, t5),
              csv.size() / 1024, ms(t5, t6), files.size(), total);
  // The goal is under a second; the bound is generous because the test
  // machine is shared and the MTEB files go through the file system.
  EXPECT_LT(total, 3000.0);
}

// Every report says what the reader looks at: which rows are baselines
// without weights, and which tasks do not compare with the published C-MTEB
// leaderboard (subsets of a C-MTEB task, named for what they are, and
// substitutes); a folder holding the C-MTEB split itself is not listed.
TEST(Leaderboard, BaselinesAndNonComparableTasksAreCalledOut) {
  fs::path db = test::scratch_dir("reports/honest") / "r.sqlite";
  {
    ResultStore s(db);
    const int64_t run = s.begin_run(RunRecord{});
    EncoderInfo base, neural;
    base.spec = "baseline:char-ngram", base.name = "char-ngram-tfidf", base.fingerprint = "a", base.dim = 4;
    neural.spec = "hf:/m/x,fp32", neural.name = "x", neural.fingerprint = "b", neural.dim = 4;
    const int64_t mb = s.upsert_model(base), mn = s.upsert_model(neural);
    for (const auto& [name, mteb] : std::vector<std::pair<std::string, std::string>>{
             {"TNews-sub2k", "TNews"}, {"LCQMC", "LCQMC"}, {"CMRC2018Retrieval", ""}}) {
      TaskRecord t;
      t.name = name, t.mteb_name = mteb, t.type = "STS", t.split = "test", t.main_score = "cosine_spearman";
      t.dataset_checksum = "sum" + name;
      const int64_t id = s.upsert_task(t);
      for (int64_t m : {mb, mn}) {
        ResultRecord r;
        r.run_id = run, r.model_id = m, r.task_id = id, r.main_score = 0.5;
        r.scores = {{"cosine_spearman", 0.5}, {"main_score", 0.5}};
        s.record_result(r, false);
      }
    }
    s.end_run(run, "finished");
  }
  auto store = ResultStore::open_existing(db);
  Leaderboard lb = build_leaderboard(store->latest_results(), store->runs());
  ASSERT_EQ(lb.notices.size(), 2u);
  EXPECT_EQ(lb.notices[0], "char-ngram-tfidf (baseline:char-ngram) is a lexical baseline without weights, shown for "
                           "reference.");
  EXPECT_EQ(lb.notices[1], "Not comparable with the published C-MTEB leaderboard: TNews-sub2k (TNews) is a subset or "
                           "re-split of the C-MTEB task in brackets; CMRC2018Retrieval holds no C-MTEB task's data "
                           "(substitutes; see its task.json).");
  // The Markdown report names the relation of each dataset, as the HTML one does.
  const std::string md = markdown_report(lb, "t");
  EXPECT_NE(md.find("| LCQMC | STS | test | the C-MTEB split |"), std::string::npos) << md;
  EXPECT_NE(md.find("| TNews-sub2k | STS | test | subset of TNews |"), std::string::npos) << md;
  EXPECT_NE(md.find("| CMRC2018Retrieval | STS | test | no |"), std::string::npos) << md;
  EXPECT_NE(md.find("## Prompts\n\nNo task used a prompt"), std::string::npos) << md;
}
