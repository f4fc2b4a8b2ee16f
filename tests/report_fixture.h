#pragma once
// Databases the report tests, the browser test and the render benchmark
// share. Header-only so each of those executables can use it.
//
// report_fixture(): a small fixed database whose numbers are chosen to be
// checked by hand. Four tasks (two STS, one Retrieval, one Clustering), five
// models, main scores (fractions):
//
//   model                            LCQMC  BQ    CMRC  CLS    texts/s
//   A BAAI/bge-small-zh-v1.5 (fp32)  .80    .70   .60   .40    100
//   B BAAI/bge-small-zh-v1.5 sq-w8a8 .79    .71   .58   .40    200  (fidelity .995 .993 .990 .992)
//   C char-ngram-tfidf               .50    .40   .55   .30    2000
//   D <script>alert(1)</script>      .80    .20   .90   -      400  (run 2, failed before CLS)
//   E text2vec-base-chinese          .60    .50   .50   .35    50
//
// Timestamps are fixed afterwards, so every report of it is byte-stable.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/result_store.h"
#include "harness/sqlite_db.h"

namespace embeval::test {

inline RunRecord fixture_run(int64_t threads) {
  RunRecord r;
  r.command = "embeval run --suite cmteb-mini";
  r.harness_version = "0.1.0";
  r.git_revision = "abc123def456";
  r.build_type = "Release";
  r.host = "bench-host";
  r.os = "Linux 6.1.0 x86_64";
  r.cpu_model = "Test CPU @ 2.50GHz";
  r.cpu_threads = 8;
  r.threads = threads;
  r.gpu = "none";
  r.libtorch_version = "1.13.0";
  r.blas = "/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3";
  return r;
}

inline EncoderInfo fixture_model(const std::string& spec, const std::string& name, int64_t dim) {
  EncoderInfo m;
  m.spec = spec;
  m.name = name;
  m.fingerprint = "fp-" + spec;
  m.dim = dim;
  return m;
}

// Metrics of one task type around a main score, a few per type, with values
// that exercise rounding (many digits) and an exact half at the 7th decimal.
inline nlohmann::ordered_json fixture_scores(const std::string& type, double main) {
  nlohmann::ordered_json s;
  if (type == "STS") {
    s["cosine_pearson"] = main - 0.0123456789;
    s["cosine_spearman"] = main;
    s["manhattan_spearman"] = main - 0.0200000004;
  } else if (type == "Retrieval") {
    s["ndcg_at_1"] = main - 0.1;
    s["ndcg_at_10"] = main;
    s["map_at_10"] = main - 0.05;
    s["recall_at_100"] = 1.0;
  } else {
    s["v_measure"] = main;
    s["v_measure_std"] = 0.0078125;  // 1/128: round(x, 6) must give 0.007812 (half to even)
    s["v_measures"] = {main - 0.0078125, main + 0.0078125};
  }
  s["main_score"] = main;
  return s;
}

inline void report_fixture(const std::filesystem::path& db) {
  std::filesystem::remove(db);
  {
    ResultStore s(db);
    struct Task {
      const char* name;
      const char* type;
      const char* main;
    };
    const Task tasks[] = {{"LCQMC-mini", "STS", "cosine_spearman"},
                          {"BQ-mini", "STS", "cosine_spearman"},
                          {"CMRC2018Retrieval-mini", "Retrieval", "ndcg_at_10"},
                          {"CLSClusteringS2S-mini", "Clustering", "v_measure"}};
    std::vector<int64_t> task_ids;
    int i = 0;
    for (const Task& t : tasks) {
      TaskRecord r;
      r.name = t.name;
      r.type = t.type;
      r.split = std::string(t.type) == "Retrieval" ? "dev" : "test";
      r.language = "zh";
      r.main_score = t.main;
      r.dataset_checksum = fmt::format("{:064x}", 0xabcdef01 + i);
      r.dataset_revision = fmt::format("{:040x}", 0x1234 + i);
      r.source_repo = std::string("https://huggingface.co/datasets/C-MTEB/") + t.name;
      r.license = "unknown";
      r.path = std::string("datasets/cmteb/") + t.name;
      task_ids.push_back(s.upsert_task(r));
      ++i;
    }

    EncoderInfo a = fixture_model("bert:bge-small-zh-v1.5", "BAAI/bge-small-zh-v1.5", 512);
    a.n_parameters = 24000000;
    a.max_tokens = 512;
    a.revision = "7999e1d3359715c523056ef9478215996d62a620";
    EncoderInfo b = a;
    b.spec = "bert:bge-small-zh-v1.5,sq-w8a8";
    b.fingerprint = "fp-" + b.spec;
    b.quantization = "sq-w8a8";
    EncoderInfo c = fixture_model("baseline:char-ngram", "char-ngram-tfidf", 4096);
    EncoderInfo d = fixture_model("precomputed:<script>alert(1)</script>.jsonl", "<script>alert(1)</script>", 128);
    EncoderInfo e = fixture_model("bert:text2vec-base-chinese", "shibing624/text2vec-base-chinese", 768);
    e.n_parameters = 102000000;
    e.max_tokens = 512;

    const double scores[5][4] = {{.80, .70, .60, .40}, {.79, .71, .58, .40}, {.50, .40, .55, .30},
                                 {.80, .20, .90, -1}, {.60, .50, .50, .35}};
    const double seconds[5] = {2.0, 1.0, 0.1, 0.5, 4.0};  // 200 texts per task
    const int64_t rss_mib[5] = {500, 300, 120, 90, 900};
    const double fidelity[4] = {.995, .993, .990, .992};

    int64_t run1 = s.begin_run(fixture_run(4));
    int64_t run2 = 0;
    const EncoderInfo* models[5] = {&a, &b, &c, &d, &e};
    for (int m = 0; m < 5; ++m) {
      int64_t model_id = s.upsert_model(*models[m]);
      int64_t run = run1;
      if (m == 3) run = run2 = s.begin_run(fixture_run(2));
      for (int t = 0; t < 4; ++t) {
        if (scores[m][t] < 0) continue;
        ResultRecord r;
        r.run_id = run;
        r.model_id = model_id;
        r.task_id = task_ids[t];
        r.main_score = scores[m][t];
        r.scores = fixture_scores(tasks[t].type, scores[m][t]);
        if (m == 1) r.scores["embeval_cosine_to_fp32"] = fidelity[t];
        if (m == 1) r.scores["embeval_min_cosine_to_fp32"] = fidelity[t] - 0.01 * (t + 1);
        r.prompts = nlohmann::json::object();
        if (t == 2 && m < 2) r.prompts["query"] = "Represent this sentence for searching relevant passages: ";
        r.evaluation_seconds = seconds[m] + 1.25;
        r.timing.encode_seconds = seconds[m];
        r.timing.encoded_items = 200;
        r.timing.encoded_tokens = m < 2 || m == 4 ? 6000 : -1;
        r.timing.evaluate_seconds = 1.25;
        r.timing.peak_rss_bytes = rss_mib[m] * 1024 * 1024;
        if (m < 2 && t == 0) {
          r.timing.latency_samples = 100;
          r.timing.latency_p50_ms = m == 0 ? 5.0 : 2.5;
          r.timing.latency_p95_ms = m == 0 ? 9.0 : 4.0;
        }
        s.record_result(r, false);
      }
      if (m == 3) s.end_run(run2, "failed", "CLSClusteringS2S-mini: out of memory");
    }
    s.end_run(run1, "finished");
  }
  SqliteDb raw(db, false);
  raw.exec("UPDATE runs SET started_at = printf('2025-01-0%dT10:00:00.000Z', id), "
           "finished_at = printf('2025-01-0%dT10:30:00.000Z', id)");
  raw.exec("UPDATE results SET created_at = '2025-01-01T10:10:00.000Z'");
}

// A large database for timing: n_models x n_tasks, every result with the
// metric count of its type (Retrieval ~70 like the real evaluator, others
// ~10), written in one transaction so building it stays fast.
inline void synthetic_db(const std::filesystem::path& db, int n_models, int n_tasks) {
  std::filesystem::remove(db);
  { ResultStore create(db); }
  SqliteDb raw(db, false);
  raw.exec("BEGIN");
  {
    SqliteStatement run(raw, "INSERT INTO runs (id, started_at, finished_at, status, command, harness_version, "
                             "git_revision, host, cpu_model, cpu_threads, threads) VALUES (1, "
                             "'2025-01-01T00:00:00Z', '2025-01-01T01:00:00Z', 'finished', 'embeval run', '0.1.0', "
                             "'abc', 'h', 'cpu', 8, 4)");
    run.run();
  }
  static const char* const types[] = {"Retrieval", "STS", "PairClassification", "Classification", "Reranking",
                                      "Clustering"};
  SqliteStatement task(raw, "INSERT INTO tasks (id, name, type, split, language, main_score, version, "
                            "dataset_checksum) VALUES (?, ?, ?, 'test', 'zh', 'main', 1, ?)");
  for (int t = 0; t < n_tasks; ++t) {
    task.reset();
    task.bind(1, int64_t(t + 1)).bind(2, fmt::format("Task{:02d}", t)).bind(3, types[t % 6]);
    task.bind(4, fmt::format("{:064x}", t));
    task.run();
  }
  SqliteStatement model(raw, "INSERT INTO models (id, spec, name, fingerprint, device, dimension, similarity, "
                             "n_parameters, max_tokens, dtype, quantization) VALUES (?, ?, ?, ?, 'cpu', 768, "
                             "'cosine', 100000000, 512, 'fp32', ?)");
  for (int m = 0; m < n_models; ++m) {
    model.reset();
    model.bind(1, int64_t(m + 1)).bind(2, fmt::format("bert:model-{:02d}{}", m / 2, m % 2 ? ",sq-w8a8" : ""));
    model.bind(3, fmt::format("org/model-{:02d}", m / 2)).bind(4, fmt::format("fp{}", m));
    model.bind(5, m % 2 ? "sq-w8a8" : "");
    model.run();
  }
  SqliteStatement result(raw, "INSERT INTO results (id, run_id, model_id, task_id, main_score, scores_json, "
                              "prompts_json, evaluation_seconds, created_at) VALUES (?, 1, ?, ?, ?, ?, '{}', 3.5, "
                              "'2025-01-01T00:30:00Z')");
  SqliteStatement timing(raw, "INSERT INTO timings (result_id, encode_seconds, encoded_items, encoded_tokens, "
                              "evaluate_seconds, peak_rss_bytes, latency_samples) VALUES (?, ?, 1000, 30000, 0.5, "
                              "1000000000, 0)");
  int64_t id = 0;
  for (int m = 0; m < n_models; ++m)
    for (int t = 0; t < n_tasks; ++t) {
      ++id;
      double main = 0.3 + 0.6 * std::fmod(0.618034 * (m * n_tasks + t), 1.0);
      nlohmann::ordered_json s;
      int n_metrics = t % 6 == 0 ? 70 : 10;
      for (int k = 0; k < n_metrics; ++k) s[fmt::format("metric_{:02d}", k)] = main * (1.0 - 0.001 * k);
      s["main"] = main;
      s["main_score"] = main;
      result.reset();
      result.bind(1, id).bind(2, int64_t(m + 1)).bind(3, int64_t(t + 1)).bind(4, main).bind(5, s.dump());
      result.run();
      timing.reset();
      timing.bind(1, id).bind(2, 1.0 + 0.1 * m);
      timing.run();
    }
  raw.exec("COMMIT");
}

}  // namespace embeval::test
