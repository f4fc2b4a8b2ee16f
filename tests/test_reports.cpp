// Leaderboard arithmetic (hand-computed means, blanks for missing tasks),
// the Markdown printer and the MTEB result-file layout, on a small database
// built here.
#include <fstream>

#include <gtest/gtest.h>

#include "harness/result_store.h"
#include "reports/leaderboard.h"
#include "reports/markdown_report.h"
#include "reports/mteb_json_report.h"
#include "reports/score_format.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace embeval;
using namespace embeval::reports;

namespace {

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

}  // namespace

TEST(Leaderboard, MeansByHandAndBlanksForMissingTasks) {
  Leaderboard lb = build_leaderboard(small_results(test::scratch_dir("reports/lb") / "r.sqlite"));
  ASSERT_EQ(lb.types.size(), 2u);
  EXPECT_EQ(lb.types[0].type, "STS");  // C-MTEB order: STS before Clustering
  EXPECT_EQ(lb.types[0].n_tasks, 2);
  EXPECT_EQ(lb.types[1].type, "Clustering");
  ASSERT_EQ(lb.rows.size(), 2u);
  const LeaderboardRow& a = lb.rows[0];  // complete rows first
  EXPECT_EQ(a.model.info.name, "a");
  // Mean (Task) = (0.5 + 0.7 + 0.3) / 3; STS mean = 0.6; Mean (TaskType) = (0.6 + 0.3) / 2.
  EXPECT_NEAR(*a.mean_task, 0.5, 1e-12);
  EXPECT_NEAR(*a.type_mean.at("STS"), 0.6, 1e-12);
  EXPECT_NEAR(*a.mean_type, 0.45, 1e-12);
  EXPECT_NEAR(*a.items_per_second, 100.0, 1e-9);  // 300 items / 3 s
  const LeaderboardRow& b = lb.rows[1];
  EXPECT_FALSE(b.mean_task.has_value());  // missing S2: no partial mean
  EXPECT_FALSE(b.type_mean.at("STS").has_value());
  EXPECT_NEAR(*b.type_mean.at("Clustering"), 0.4, 1e-12);
  EXPECT_FALSE(b.mean_type.has_value());
}

TEST(MarkdownReport, TablesWithBlanksAndEscaping) {
  Leaderboard lb = build_leaderboard(small_results(test::scratch_dir("reports/md") / "r.sqlite"));
  std::string md = markdown_report(lb, {}, "Test | board");
  EXPECT_NE(md.find("# Test \\| board"), std::string::npos);
  EXPECT_NE(md.find("| Model | Spec | Dim | Tasks | Mean (Task) | Mean (TaskType) | STS (2) | Clustering (1) | texts/s |"),
            std::string::npos) << md;
  EXPECT_NE(md.find("| a | `baseline:a` | 4 | 3/3 | 50.00 | 45.00 | 60.00 | 30.00 | 100.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| b | `baseline:b` | 4 | 2/3 |  |  |  | 40.00 | 100.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| b | 90.00 |  |"), std::string::npos) << md;  // STS section: S2 blank
  EXPECT_EQ(markdown_cell("<script>a|b</script>"), "&lt;script&gt;a\\|b&lt;/script&gt;");
  EXPECT_NE(markdown_report(build_leaderboard({}), {}, "t").find("No results recorded yet"), std::string::npos);
}

TEST(ScoreFormat, HundredthsAndBlank) {
  EXPECT_EQ(format_score(0.40996), "41.00");
  EXPECT_EQ(format_score(0.123449), "12.34");
  EXPECT_EQ(format_score(std::nullopt), "");
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
  EncoderInfo q;
  q.name = "BAAI/bge-small-zh-v1.5";
  q.quantization = "awq-int4-g128";
  q.device = "cuda:0";
  EXPECT_EQ(mteb_model_folder(q), "BAAI__bge-small-zh-v1.5__awq-int4-g128__cuda_0");
}
